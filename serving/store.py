"""Persistence of graded conversations, and the effective-grade cache kept beside them.

A machine grade is appended, never edited; the effective grade is recomputed by
grader.review from the latest machine grade and every review, and cached (in the same
transaction as the change that caused it) for search and statistics.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from grader.review import ReviewInput, effective_grade
from grader.rubric.schema import Rubric
from grader.types import Grade, Transcript
from serving import audit
from serving.audit import Caller
from serving.db import (Conversation, EffectiveBehavior, EffectiveFailure, EffectiveGrade, MachineGrade, Review,
                        utcnow)
from serving.errors import NotFound

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def local_date(started_at: str | None) -> str | None:
    """The calendar date of an ISO timestamp, as written (the contact centre's local day)."""
    if not started_at:
        return None
    try:
        return datetime.fromisoformat(started_at).date().isoformat()
    except ValueError:
        match = _DATE.match(started_at)
        return match.group(0) if match else None


def summary(grade: Grade) -> dict:
    """Score, band and red-line verdict: what the audit log and side-by-side views show."""
    return {"score": grade.score, "grade": grade.grade, "red_line": grade.red_line}


def _upsert_conversation(session: Session, transcript: Transcript, submitted_by: int | None) -> Conversation:
    team = transcript.metadata.get("team")
    fields = dict(transcript=dumps(transcript.model_dump(mode="json", exclude_none=True)),
                  agent_id=transcript.agent_id, team=str(team) if team is not None else None,
                  started_at=transcript.started_at, started_date=local_date(transcript.started_at))
    conv = session.get(Conversation, transcript.id)
    if conv is None:
        conv = Conversation(id=transcript.id, submitted_by=submitted_by, **fields)
        session.add(conv)
    else:
        for key, value in fields.items():
            setattr(conv, key, value)
        conv.updated_at = utcnow()
    session.flush()
    return conv


def save_grade(session: Session, transcript: Transcript, grade: Grade, rubric: Rubric, actor: Caller,
               job_id: str | None = None) -> MachineGrade:
    """Store a conversation's transcript and a new machine grade; refresh its effective grade."""
    _upsert_conversation(session, transcript, actor.key_id)
    row = MachineGrade(conversation_id=transcript.id, grade_json=grade.model_dump_json(exclude_none=True),
                       score=grade.score, grade=grade.grade, red_line=grade.red_line,
                       rubric_id=grade.rubric.get("id", rubric.id), rubric_version=grade.rubric.get("version", rubric.version),
                       model_info=dumps(grade.model), submitted_by=actor.key_id, job_id=job_id)
    session.add(row)
    session.flush()
    effective = refresh_effective(session, transcript.id, rubric)
    audit.record(session, actor, "grade.machine", "machine_grade", row.id, conversation_id=transcript.id,
                 after={**summary(grade), "rubric": grade.rubric, "model": grade.model, "effective": summary(effective)},
                 why=f"job {job_id}" if job_id else "POST /v1/grade")
    return row


@dataclass(frozen=True)
class GradeState:
    """A conversation's latest machine grade, its reviews and the effective grade they make."""

    row: MachineGrade
    machine: Grade
    reviews: list[Review]
    effective: Grade


def latest_machine_grade(session: Session, conversation_id: str) -> MachineGrade:
    row = session.scalar(select(MachineGrade).where(MachineGrade.conversation_id == conversation_id)
                         .order_by(MachineGrade.id.desc()).limit(1))
    if row is None:
        raise NotFound(f"conversation {conversation_id!r} has no grade")
    return row


def reviews_of(session: Session, conversation_id: str) -> list[Review]:
    return list(session.scalars(select(Review).where(Review.conversation_id == conversation_id).order_by(Review.id)))


def grade_state(session: Session, conversation_id: str, rubric: Rubric) -> GradeState:
    """Recompute the effective grade from the stored machine grade and reviews."""
    row = latest_machine_grade(session, conversation_id)
    machine = Grade.model_validate_json(row.grade_json)
    reviews = reviews_of(session, conversation_id)
    inputs = [ReviewInput.model_validate_json(r.body) for r in reviews]
    return GradeState(row, machine, reviews, effective_grade(machine, inputs, rubric))


def _failures(conversation_id: str, grade: Grade) -> list[dict]:
    rows = []
    failed = [("item", i.id, i.evidence) for i in grade.items if i.applicable and not i.passed]
    failed += [("red_line", r.id, r.evidence) for r in grade.red_lines]
    for kind, ref, evidence in failed:
        turns = sorted({e.turn for e in evidence}) or [None]
        rows += [dict(conversation_id=conversation_id, kind=kind, ref_id=ref, turn=t) for t in turns]
    return rows


def refresh_effective(session: Session, conversation_id: str, rubric: Rubric) -> Grade:
    """Recompute and cache a conversation's effective grade; returns it."""
    state = grade_state(session, conversation_id, rubric)
    eff = state.effective
    values = dict(machine_grade_id=state.row.id, machine_score=state.machine.score, score=eff.score, grade=eff.grade,
                  red_line=eff.red_line, reviewed=bool(state.reviews),
                  relabeled=any(json.loads(r.body).get("turns") for r in state.reviews),
                  grade_json=eff.model_dump_json(exclude_none=True), updated_at=utcnow())
    cached = session.get(EffectiveGrade, conversation_id)
    if cached is None:
        session.add(EffectiveGrade(conversation_id=conversation_id, **values))
    else:
        for key, value in values.items():
            setattr(cached, key, value)
    session.execute(delete(EffectiveBehavior).where(EffectiveBehavior.conversation_id == conversation_id))
    session.execute(delete(EffectiveFailure).where(EffectiveFailure.conversation_id == conversation_id))
    behaviors = [dict(conversation_id=conversation_id, turn=t.index, behavior=b)
                 for t in eff.turns for b in dict.fromkeys(t.behaviors)]
    for table, rows in ((EffectiveBehavior, behaviors), (EffectiveFailure, _failures(conversation_id, eff))):
        if rows:
            session.execute(insert(table), rows)
    session.flush()
    return eff
