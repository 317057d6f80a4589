"""Synchronous grading (POST /v1/grade): one transcript, or a list of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.output import result_dict
from grader.readers import parse_transcript
from grader.types import ErrorInfo, ErrorRecord, Grade, Transcript
from serving import idempotency, store
from serving.audit import Caller
from serving.bodies import RawBody, check_limits, parse_json
from serving.errors import GradingFailed, Invalid, TooLarge
from serving.runner import GradingRunner
from serving.settings import Settings

ROUTE = "POST /v1/grade"


@dataclass(frozen=True)
class Submission:
    """What to grade: `single` for a transcript sent alone, else the list form."""

    single: bool
    items: list[Transcript | ErrorRecord]


def mark_duplicates(items: list[Transcript | ErrorRecord]) -> list[Transcript | ErrorRecord]:
    """A repeated id becomes an error record (the first occurrence is graded)."""
    seen: set[str] = set()
    out: list[Transcript | ErrorRecord] = []
    for n, item in enumerate(items):
        if isinstance(item, Transcript) and item.id in seen:
            item = ErrorRecord(id=item.id, error=ErrorInfo(
                code="duplicate_id", field="id", line=n + 1,
                message=f"conversation {n}: field `id`: {item.id!r} already appears in this request"))
        elif isinstance(item, Transcript):
            seen.add(item.id)
        out.append(item)
    return out


def conversations_of(data: Any, limit: int) -> list[Any]:
    """The `conversations` list of a list-form body (422 when missing, 413 over the limit)."""
    convs = data.get("conversations") if isinstance(data, dict) else data
    if not isinstance(convs, list):
        raise Invalid("conversations: a list of transcripts is required", "conversations")
    if not convs:
        raise Invalid("conversations: at least one conversation is required", "conversations")
    if len(convs) > limit:
        raise TooLarge(f"conversations: {len(convs)} conversations exceed the limit of {limit}", "conversations")
    return convs


def parse_submission(body: RawBody, settings: Settings) -> Submission:
    """A transcript alone (422 when bad) or `{"conversations": [...]}` (bad ones become error
    records in place); 413 over the limits."""
    data = parse_json(body)
    if isinstance(data, dict) and "conversations" in data and "turns" not in data:
        convs = conversations_of(data, settings.max_grade_conversations)
        for n, raw in enumerate(convs):
            check_limits(raw, settings, f"conversations.{n}.")
        return Submission(False, mark_duplicates([parse_transcript(raw, n + 1) for n, raw in enumerate(convs)]))
    check_limits(data, settings)
    parsed = parse_transcript(data, 1)
    if isinstance(parsed, ErrorRecord):
        raise Invalid(parsed.error.message, parsed.error.field, code=parsed.error.code)
    return Submission(True, [parsed])


def _payload(submission: Submission, results: list[Grade | ErrorRecord]) -> Any:
    if submission.single:
        if isinstance(results[0], ErrorRecord):
            raise GradingFailed(results[0].error.message)
        return result_dict(results[0])
    return {"results": [result_dict(r) for r in results]}


def _store(session: Session, submission: Submission, results: list[Grade | ErrorRecord], runner: GradingRunner,
           caller: Caller, key: str | None, body_hash: str, payload: Any) -> None:
    for item, result in zip(submission.items, results):
        if isinstance(result, Grade) and isinstance(item, Transcript):
            store.save_grade(session, item, result, runner.rubric, caller)
    idempotency.remember(session, caller, ROUTE, key, body_hash, 200, payload)
    session.commit()


def grade_request(session: Session, runner: GradingRunner, settings: Settings, caller: Caller, body: RawBody,
                  key: str | None) -> tuple[int, Any]:
    """Grade, store every graded conversation and answer (status, payload), all or nothing."""
    submission = parse_submission(body, settings)
    key = idempotency.check_key(key)
    body_hash = idempotency.digest(body)
    stored = idempotency.replay(session, caller, ROUTE, key, body_hash)
    session.rollback()  # end the read: no transaction stays open while the engine works
    if stored is not None:
        return stored
    results = runner.grade(submission.items)
    payload = _payload(submission, results)
    try:
        _store(session, submission, results, runner, caller, key, body_hash, payload)
    except IntegrityError:
        # A concurrent request stored the same idempotency key, or the same new conversation id.
        session.rollback()
        stored = idempotency.replay(session, caller, ROUTE, key, body_hash)
        if stored is not None:
            return stored
        _store(session, submission, results, runner, caller, key, body_hash, payload)
    return 200, payload
