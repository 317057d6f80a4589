"""Coaching search over effective grades: turns and conversations filtered by behavior present
or missing, item failed, red line, score range, agent, team and date, with their context."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, and_, exists, func, literal, select
from sqlalchemy.orm import Session

from grader.features.pii import mask_personal_numbers
from serving.db import Conversation, EffectiveBehavior, EffectiveFailure, EffectiveGrade


@dataclass(frozen=True)
class Filters:
    """Query filters shared by examples and statistics (None: not filtered)."""

    behavior: str | None = None
    missing: str | None = None
    item_failed: str | None = None
    red_line: bool | None = None
    score_min: float | None = None
    score_max: float | None = None
    agent_id: str | None = None
    team: str | None = None
    date_from: date | None = None
    date_to: date | None = None


def _has_behavior(behavior: str):
    return exists().where(EffectiveBehavior.conversation_id == Conversation.id, EffectiveBehavior.behavior == behavior)


def conversations(f: Filters) -> Select:
    """Ids of the conversations (with an effective grade) that pass every filter."""
    stmt = select(Conversation.id).join(EffectiveGrade, EffectiveGrade.conversation_id == Conversation.id)
    conds = []
    if f.agent_id is not None:
        conds.append(Conversation.agent_id == f.agent_id)
    if f.team is not None:
        conds.append(Conversation.team == f.team)
    if f.date_from is not None:
        conds.append(Conversation.started_date >= f.date_from.isoformat())
    if f.date_to is not None:
        conds.append(Conversation.started_date <= f.date_to.isoformat())
    if f.score_min is not None:
        conds.append(EffectiveGrade.score >= f.score_min)
    if f.score_max is not None:
        conds.append(EffectiveGrade.score <= f.score_max)
    if f.red_line is not None:
        conds.append(EffectiveGrade.red_line == f.red_line)
    if f.behavior is not None:
        conds.append(_has_behavior(f.behavior))
    if f.missing is not None:
        conds.append(~_has_behavior(f.missing))
    if f.item_failed is not None:
        conds.append(exists().where(EffectiveFailure.conversation_id == Conversation.id,
                                    EffectiveFailure.kind == "item", EffectiveFailure.ref_id == f.item_failed))
    return stmt.where(and_(*conds)) if conds else stmt


def _hits(f: Filters, matching: Select) -> Select:
    """(conversation_id, turn) of each hit: the turns carrying the behavior, or the evidence
    turns of the failed item or red line; else one conversation-level hit (turn null)."""
    ids = matching
    if f.behavior is not None:
        return select(EffectiveBehavior.conversation_id.label("cid"), EffectiveBehavior.turn.label("turn")).where(
            EffectiveBehavior.behavior == f.behavior, EffectiveBehavior.conversation_id.in_(ids))
    if f.item_failed is not None or f.red_line:
        kind, ref = ("item", f.item_failed) if f.item_failed is not None else ("red_line", None)
        stmt = select(EffectiveFailure.conversation_id.label("cid"), EffectiveFailure.turn.label("turn")).where(
            EffectiveFailure.kind == kind, EffectiveFailure.conversation_id.in_(ids))
        return (stmt.where(EffectiveFailure.ref_id == ref) if ref is not None else stmt).distinct()
    return select(Conversation.id.label("cid"), literal(None).label("turn")).where(Conversation.id.in_(ids))


def _context(turns: list[dict], index: int | None) -> list[dict]:
    if index is None:
        return []
    return [{"index": i, "speaker": turns[i].get("speaker"), "text": mask_personal_numbers(turns[i].get("text") or "")}
            for i in (index - 1, index + 1) if 0 <= i < len(turns)]


def _example(conv: Conversation, eff: EffectiveGrade, turn: int | None) -> dict:
    turns = json.loads(conv.transcript).get("turns", [])
    grade = json.loads(eff.grade_json)
    behaviors = next((t["behaviors"] for t in grade.get("turns", []) if t["index"] == turn), [])
    here = turns[turn] if turn is not None and turn < len(turns) else None
    return {"conversation_id": conv.id, "turn": turn, "speaker": here.get("speaker") if here else None,
            "text": mask_personal_numbers(here.get("text") or "") if here else None, "context": _context(turns, turn),
            "behaviors": behaviors, "score": eff.score, "grade": eff.grade, "red_line": eff.red_line,
            "agent_id": conv.agent_id, "team": conv.team, "started_at": conv.started_at}


def find_examples(session: Session, f: Filters, limit: int, offset: int) -> dict:
    """A page of hits, newest conversations first, each with the turns before and after."""
    hits = _hits(f, conversations(f)).subquery()
    total = session.scalar(select(func.count()).select_from(hits))
    page = session.execute(
        select(hits.c.cid, hits.c.turn).join(Conversation, Conversation.id == hits.c.cid)
        .order_by(Conversation.started_date.desc().nulls_last(), hits.c.cid, hits.c.turn.nulls_first())
        .offset(offset).limit(limit)).all()
    ids = {cid for cid, _ in page}
    rows = {c.id: (c, e) for c, e in session.execute(
        select(Conversation, EffectiveGrade).join(EffectiveGrade, EffectiveGrade.conversation_id == Conversation.id)
        .where(Conversation.id.in_(ids)))} if ids else {}
    items = [_example(*rows[cid], turn) for cid, turn in page]
    end = offset + len(items)
    return {"items": items, "total": total, "next_offset": end if end < total else None}
