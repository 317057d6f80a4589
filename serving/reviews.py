"""Conversations as reviewers see them, reviews, and disputes with their resolution.

Reviews and accepted disputes are rows of their own; the machine grade is never touched. Every
change writes an audit record (who, when, before, after, why) in the same transaction.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from grader.features.pii import mask_personal_numbers
from grader.features.pii import mask_personal_numbers
from grader.output import result_dict
from grader.review import ItemOverride, ReviewError, ReviewInput, TurnOverride, dispute_review, validate_review
from grader.rubric.schema import Rubric
from grader.types import Grade
from serving import audit, store
from serving.audit import Caller
from serving.db import AuditRecord, Conversation, Dispute, EffectiveGrade, MachineGrade, Review, utcnow
from serving.errors import Conflict, NotFound


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required")
        return mask_personal_numbers(value.strip())  # stored masked: no full personal number anywhere


class ReviewBody(_Body):
    """Body of POST /v1/conversations/{id}/reviews: item, turn-label, score and red-line
    overrides (any of them, or none to confirm the machine grade), with a reason."""

    items: list[ItemOverride] = Field(default_factory=list)
    turns: list[TurnOverride] = Field(default_factory=list)
    score: float | None = Field(default=None, ge=0, le=100)
    red_line: bool | None = None

    def to_input(self) -> ReviewInput:
        return ReviewInput(reason=self.reason, items=self.items, turns=self.turns, score=self.score,
                           red_line=self.red_line)


class DisputeBody(_Body):
    """Body of POST /v1/conversations/{id}/disputes."""

    item: str = Field(min_length=1, max_length=100)


class ResolveBody(_Body):
    """Body of POST /v1/disputes/{id}/resolve (`points` for a partial decision)."""

    decision: Literal["accepted", "rejected", "partial"]
    points: float | None = Field(default=None, ge=0)


def visible_conversation(session: Session, caller: Caller, conversation_id: str) -> Conversation:
    """The conversation when this key may see it, else 404 (never 403: existence is not leaked).
    Agents see their own (agent_id = key name); clients those they submitted."""
    conv = session.get(Conversation, conversation_id)
    if conv is None or not _may_see(session, caller, conv):
        raise NotFound(f"no conversation {conversation_id!r}")
    return conv


def _may_see(session: Session, caller: Caller, conv: Conversation) -> bool:
    if caller.role in ("admin", "reviewer"):
        return True
    if caller.role == "agent":
        return conv.agent_id is not None and conv.agent_id == caller.name
    if caller.role == "client":
        return conv.submitted_by == caller.key_id or bool(session.scalar(select(exists().where(
            MachineGrade.conversation_id == conv.id, MachineGrade.submitted_by == caller.key_id))))
    return False


def masked_transcript(conv: Conversation) -> dict:
    """The stored transcript with personal numbers masked (the service never shows them)."""
    data = json.loads(conv.transcript)
    for turn in data.get("turns", []):
        if isinstance(turn.get("text"), str):
            turn["text"] = mask_personal_numbers(turn["text"])
    return data


def review_view(row: Review) -> dict:
    body = json.loads(row.body)
    return {"id": row.id, "conversation_id": row.conversation_id, "machine_grade_id": row.machine_grade_id,
            "reviewer": row.reviewer, "source": row.source, "dispute_id": row.dispute_id, "reason": row.reason,
            "items": body.get("items", []), "turns": body.get("turns", []), "score": body.get("score"),
            "red_line": body.get("red_line"), "created_at": row.created_at}


def dispute_view(row: Dispute) -> dict:
    return {"id": row.id, "conversation_id": row.conversation_id, "item": row.item_id, "reason": row.reason,
            "status": row.status, "filed_by": row.filed_by, "created_at": row.created_at,
            "resolution": json.loads(row.resolution) if row.resolution else None, "resolver": row.resolver,
            "resolved_at": row.resolved_at}


def audit_view(row: AuditRecord) -> dict:
    return {"id": row.id, "at": row.at, "actor": row.actor, "role": row.actor_role, "action": row.action,
            "object_type": row.object_type, "object_id": row.object_id,
            "before": json.loads(row.before) if row.before else None,
            "after": json.loads(row.after) if row.after else None, "why": row.why}


def _history(session: Session, conversation_id: str) -> list[dict]:
    rows = session.scalars(select(MachineGrade).where(MachineGrade.conversation_id == conversation_id)
                           .order_by(MachineGrade.id))
    return [{"id": r.id, "score": r.score, "grade": r.grade, "red_line": r.red_line, "job_id": r.job_id,
             "rubric": {"id": r.rubric_id, "version": r.rubric_version}, "model": json.loads(r.model_info),
             "created_at": r.created_at} for r in rows]


def conversation_view(session: Session, conv: Conversation, rubric: Rubric) -> dict:
    """Transcript, machine and effective grades side by side, reviews, disputes, audit trail."""
    state = store.grade_state(session, conv.id, rubric)
    disputes = session.scalars(select(Dispute).where(Dispute.conversation_id == conv.id).order_by(Dispute.id))
    return {
        "id": conv.id, "agent_id": conv.agent_id, "team": conv.team, "started_at": conv.started_at,
        "transcript": masked_transcript(conv),
        "machine_grade": result_dict(state.machine), "effective_grade": result_dict(state.effective),
        "scores": {"machine": store.summary(state.machine), "effective": store.summary(state.effective)},
        "reviews": [review_view(r) for r in state.reviews],
        "disputes": [dispute_view(d) for d in disputes],
        "audit": [audit_view(a) for a in audit.for_conversation(session, conv.id)],
        "history": _history(session, conv.id),
    }


def list_conversations(session: Session, caller: Caller, agent_id: str | None, limit: int, offset: int) -> dict:
    """Conversations this key may see, newest first, with machine and effective scores."""
    stmt = select(Conversation, EffectiveGrade).join(EffectiveGrade, EffectiveGrade.conversation_id == Conversation.id)
    if caller.role == "agent":
        stmt = stmt.where(Conversation.agent_id == caller.name)
    elif caller.role == "client":
        stmt = stmt.where(exists().where(MachineGrade.conversation_id == Conversation.id,
                                         MachineGrade.submitted_by == caller.key_id))
    if agent_id is not None:
        stmt = stmt.where(Conversation.agent_id == agent_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.execute(stmt.order_by(Conversation.updated_at.desc(), Conversation.id).offset(offset).limit(limit))
    items = [{"id": c.id, "agent_id": c.agent_id, "team": c.team, "started_at": c.started_at,
              "machine_score": e.machine_score, "score": e.score, "grade": e.grade, "red_line": e.red_line,
              "reviewed": e.reviewed} for c, e in rows]
    return {"items": items, "total": total, "next_offset": offset + len(items) if offset + len(items) < total else None}


def _change(grade: Grade, review: ReviewInput) -> dict:
    """The parts of a grade a review touches, for its audit record."""
    items = {i.id: {"passed": i.passed, "points": i.points} for i in grade.items}
    turns = {t.index: t.behaviors for t in grade.turns}
    return {**store.summary(grade),
            "items": {o.id: items.get(o.id) for o in review.items},
            "turns": {str(t.index): turns.get(t.index) for t in review.turns}}


def _append_review(session: Session, conv_id: str, caller: Caller, review: ReviewInput, rubric: Rubric,
                   dispute_id: int | None = None) -> tuple[Review, store.GradeState, Grade]:
    state = store.grade_state(session, conv_id, rubric)
    validate_review(review, state.machine, rubric)
    row = Review(conversation_id=conv_id, machine_grade_id=state.row.id, reviewer_key_id=caller.key_id,
                 reviewer=caller.name, source=review.source, dispute_id=dispute_id, reason=review.reason,
                 body=review.model_dump_json(exclude_none=True))
    session.add(row)
    session.flush()
    return row, state, store.refresh_effective(session, conv_id, rubric)


def add_review(session: Session, conv: Conversation, caller: Caller, body: ReviewBody, rubric: Rubric) -> dict:
    """Append a review; the effective grade is recomputed and the change audited."""
    review = body.to_input()
    row, before, after = _append_review(session, conv.id, caller, review, rubric)
    audit.record(session, caller, "review.create", "review", row.id, conversation_id=conv.id,
                 before=_change(before.effective, review), after=_change(after, review), why=review.reason)
    session.commit()
    return {**review_view(row), "machine": store.summary(before.machine), "effective": store.summary(after)}


def open_dispute(session: Session, conv: Conversation, caller: Caller, body: DisputeBody, rubric: Rubric) -> dict:
    """An agent (or reviewer) contests one item of a conversation; 409 while one is open."""
    state = store.grade_state(session, conv.id, rubric)
    item = next((i for i in state.effective.items if i.id == body.item), None)
    if item is None:
        raise ReviewError(f"item: no rubric item {body.item!r} in this grade", "item")
    if session.scalar(select(exists().where(Dispute.conversation_id == conv.id, Dispute.item_id == body.item,
                                            Dispute.status == "open"))):
        raise Conflict(f"an open dispute on item {body.item!r} already exists", "item")
    row = Dispute(conversation_id=conv.id, item_id=body.item, reason=body.reason, status="open",
                  filed_by_key_id=caller.key_id, filed_by=caller.name)
    session.add(row)
    session.flush()
    audit.record(session, caller, "dispute.open", "dispute", row.id, conversation_id=conv.id,
                 after={"status": "open", "item": body.item, "passed": item.passed, "points": item.points},
                 why=body.reason)
    session.commit()
    return dispute_view(row)


def _item_state(grade: Grade, item_id: str) -> dict | None:
    return next(({"passed": i.passed, "points": i.points} for i in grade.items if i.id == item_id), None)


def find_dispute(session: Session, dispute_id: int) -> Dispute:
    row = session.get(Dispute, dispute_id)
    if row is None:
        raise NotFound(f"no dispute {dispute_id}")
    return row


def resolve_dispute(session: Session, dispute: Dispute, caller: Caller, body: ResolveBody, rubric: Rubric) -> dict:
    """Accept (the item passes), grant part of its points, or reject it; 409 when resolved."""
    if dispute.status != "open":
        raise Conflict(f"dispute {dispute.id} is already {dispute.status}", "decision")
    review = dispute_review(dispute.item_id, body.decision, body.reason, body.points, rubric)
    before = store.grade_state(session, dispute.conversation_id, rubric).effective
    after = before
    if review is not None:
        _, _, after = _append_review(session, dispute.conversation_id, caller, review, rubric, dispute.id)
    dispute.status = body.decision
    dispute.resolution = json.dumps(body.model_dump(exclude_none=True), ensure_ascii=False)
    dispute.resolver_key_id, dispute.resolver, dispute.resolved_at = caller.key_id, caller.name, utcnow()
    audit.record(session, caller, "dispute.resolve", "dispute", dispute.id, conversation_id=dispute.conversation_id,
                 before={"status": "open", "item": _item_state(before, dispute.item_id), **store.summary(before)},
                 after={"status": body.decision, "item": _item_state(after, dispute.item_id), **store.summary(after)},
                 why=body.reason)
    session.commit()
    return dispute_view(dispute)


def list_disputes(session: Session, caller: Caller, status: str | None, limit: int, offset: int) -> dict:
    """Disputes, oldest first: reviewers and admins see all, agents those on their conversations."""
    stmt = select(Dispute)
    if caller.role == "agent":
        stmt = stmt.join(Conversation, Conversation.id == Dispute.conversation_id).where(Conversation.agent_id == caller.name)
    if status is not None:
        stmt = stmt.where(Dispute.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(Dispute.id).offset(offset).limit(limit))
    items = [dispute_view(d) for d in rows]
    return {"items": items, "total": total, "next_offset": offset + len(items) if offset + len(items) < total else None}
