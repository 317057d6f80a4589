"""Batch jobs: submission, progress, results, and the worker thread that grades them.

Exactly one result per conversation, even across a kill -9: each batch's results, machine
grades and progress counters are written in one transaction, and the unique (job_id, position)
of job_results makes a second write of the same result fail as a whole. A restarted worker
simply grades the positions that have no result yet.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.output import result_dict
from grader.readers import parse_transcript
from grader.types import ErrorInfo, ErrorRecord, Grade, Transcript
from serving import audit, idempotency, store
from serving.audit import Caller
from serving.bodies import NDJSON_TYPES, RawBody, check_limits, parse_json
from serving.db import Database, Job, JobItem, JobResult, utcnow
from serving.errors import Invalid, NotFound, TooLarge
from serving.grading import conversations_of
from serving.runner import GradingRunner
from serving.settings import Settings

log = logging.getLogger("serving.jobs")
ROUTE = "POST /v1/jobs"
ACTIVE = ("queued", "running")
MAX_FAILURES = 3


@dataclass(frozen=True)
class PendingItem:
    """One conversation of a job as stored: its JSON, and the error record standing in for it
    when it cannot be graded at all (bad JSON, repeated id)."""

    input: str
    error: str | None = None
    conv_id: str | None = None


def _pending(raw: Any) -> PendingItem:
    conv_id = raw.get("id") if isinstance(raw, dict) else None
    key = str(conv_id) if isinstance(conv_id, (str, int)) and not isinstance(conv_id, bool) else None
    return PendingItem(json.dumps(raw, ensure_ascii=False), conv_id=key)


def _error(code: str, message: str, conv_id: Any = None, field: str | None = None, line: int | None = None) -> str:
    record = ErrorRecord(id=None if conv_id is None else str(conv_id),
                         error=ErrorInfo(code=code, message=message, field=field, line=line))
    return json.dumps(result_dict(record), ensure_ascii=False)


def _ndjson_items(body: RawBody, settings: Settings) -> list[PendingItem]:
    try:
        text = body.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"the body is not UTF-8: {exc}", code="bad_json") from exc
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise Invalid("conversations: at least one conversation is required", "conversations")
    if len(lines) > settings.max_job_conversations:
        raise TooLarge(f"conversations: {len(lines)} conversations exceed the limit of "
                       f"{settings.max_job_conversations}", "conversations")
    items = []
    for pos, (n, line) in enumerate(lines):
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            items.append(PendingItem(json.dumps(line, ensure_ascii=False),
                                     _error("bad_json", f"line {n}: not valid JSON: {exc.msg}", line=n)))
            continue
        check_limits(raw, settings, f"conversations.{pos}.")
        items.append(_pending(raw))
    return items


def parse_job_items(body: RawBody, settings: Settings) -> list[PendingItem]:
    """The job's conversations in order: a JSON body `{"conversations": [...]}` or JSON Lines.
    Limits are checked now (413); validation errors become error records when graded."""
    if body.media_type in NDJSON_TYPES:
        items = _ndjson_items(body, settings)
    else:
        convs = conversations_of(parse_json(body), settings.max_job_conversations)
        for n, raw in enumerate(convs):
            check_limits(raw, settings, f"conversations.{n}.")
        items = [_pending(raw) for raw in convs]
    return _mark_duplicates(items)


def _mark_duplicates(items: list[PendingItem]) -> list[PendingItem]:
    seen: set[str] = set()
    out = []
    for pos, item in enumerate(items):
        key = item.conv_id
        if key is not None and key in seen:
            item = PendingItem(item.input, _error("duplicate_id", f"conversation {pos}: field `id`: {key!r} "
                                                  "already appears in this job", key, "id", pos + 1))
        elif key is not None:
            seen.add(key)
        out.append(item)
    return out


def job_view(job: Job) -> dict:
    return {"id": job.id, "status": job.status, "total": job.total, "done": job.done, "errors": job.errors,
            "created_at": job.created_at, "updated_at": job.updated_at, "finished_at": job.finished_at}


def create_job(session: Session, settings: Settings, caller: Caller, body: RawBody, key: str | None) -> tuple[int, Any]:
    """Queue a job (all its items in one transaction); answers 202 `{id, status, total}`."""
    items = parse_job_items(body, settings)
    key = idempotency.check_key(key)
    body_hash = idempotency.digest(body)
    stored = idempotency.replay(session, caller, ROUTE, key, body_hash)
    if stored is not None:
        return stored
    job = Job(id=uuid.uuid4().hex, status="queued", total=len(items), done=0, errors=0, failures=0,
              submitted_by=caller.key_id, idempotency_key=key)
    session.add(job)
    session.flush()
    session.execute(insert(JobItem), [dict(job_id=job.id, position=pos, input=item.input, error=item.error)
                                      for pos, item in enumerate(items)])
    payload = {"id": job.id, "status": "queued", "total": job.total}
    audit.record(session, caller, "job.create", "job", job.id, after=payload)
    idempotency.remember(session, caller, ROUTE, key, body_hash, 202, payload)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # the same key was stored by a concurrent request: answer as it did
        stored = idempotency.replay(session, caller, ROUTE, key, body_hash)
        if stored is None:
            raise
        return stored
    return 202, payload


def visible_job(session: Session, caller: Caller, job_id: str) -> Job:
    """The job, when this key may see it (admins: all; clients: their own); else 404."""
    job = session.get(Job, job_id)
    if job is None or (caller.role != "admin" and job.submitted_by != caller.key_id):
        raise NotFound(f"no job {job_id!r}")
    return job


def list_jobs(session: Session, caller: Caller, limit: int, offset: int) -> dict:
    stmt = select(Job)
    if caller.role != "admin":
        stmt = stmt.where(Job.submitted_by == caller.key_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    jobs = session.scalars(stmt.order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit))
    items = [job_view(j) for j in jobs]
    return {"items": items, "total": total, "next_offset": offset + len(items) if offset + len(items) < total else None}


def job_results(session: Session, job: Job, offset: int, limit: int) -> dict:
    """A page of results in input order; `next_offset` is null once the page reaches the end.
    While the job runs the page stops at the first position not graded yet."""
    rows = session.execute(select(JobResult.position, JobResult.result).where(
        JobResult.job_id == job.id, JobResult.position >= offset, JobResult.position < offset + limit)
        .order_by(JobResult.position)).all()
    items = []
    for expected, (position, result) in enumerate(rows, offset):
        if position != expected:
            break
        items.append(json.loads(result))
    end = offset + len(items)
    return {"items": items, "total": job.total, "status": job.status,
            "next_offset": end if end < job.total else None}


class JobWorker:
    """Grades queued and unfinished jobs in batches, in a background thread or on demand."""

    def __init__(self, database: Database, runner: GradingRunner, batch_size: int = 16, poll_seconds: float = 1.0):
        self.database = database
        self.runner = runner
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; it resumes whatever jobs a previous process left unfinished."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="grader-job-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Finish the current batch and stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Look for work now (a job was just queued)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # noqa: BLE001 - e.g. the database is unreachable: retry after a pause
                log.exception("job worker: unexpected error")
                worked = False
            if not worked:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def run_until_idle(self) -> int:
        """Process batches until no job has work left; returns the number of batches."""
        batches = 0
        while self.run_once():
            batches += 1
        return batches

    def run_once(self) -> bool:
        """Grade one batch of the oldest unfinished job; False when there is nothing to do."""
        with self.database.session() as session:
            job = session.scalar(select(Job).where(Job.status.in_(ACTIVE)).order_by(Job.created_at, Job.id).limit(1))
            if job is None:
                return False
            job_id, owner = job.id, job.submitted_by
            pending = self._pending(session, job_id)
            if not pending:
                self._finish(session, job_id)
                session.commit()
                return True
            if job.status == "queued":
                job.status, job.updated_at = "running", utcnow()
            session.commit()  # no transaction stays open while the engine grades
        try:
            graded = self._grade(pending)
            self._write(job_id, owner, graded)
        except IntegrityError:
            log.info("job %s: batch already written by another worker", job_id)
        except Exception as exc:  # noqa: BLE001 - count it; a job failing repeatedly is marked failed
            log.exception("job %s: batch failed", job_id)
            self._record_failure(job_id, exc)
        return True

    def _pending(self, session: Session, job_id: str) -> list[tuple[int, str, str | None]]:
        done = and_(JobResult.job_id == JobItem.job_id, JobResult.position == JobItem.position)
        stmt = (select(JobItem.position, JobItem.input, JobItem.error).outerjoin(JobResult, done)
                .where(JobItem.job_id == job_id, JobResult.id.is_(None)).order_by(JobItem.position).limit(self.batch_size))
        return [tuple(row) for row in session.execute(stmt)]

    def _grade(self, pending: list[tuple[int, str, str | None]]) -> list[tuple[int, Transcript | ErrorRecord, Grade | ErrorRecord]]:
        items: list[Transcript | ErrorRecord] = []
        for position, raw, error in pending:
            if error is not None:
                data = json.loads(error)
                items.append(ErrorRecord(id=data.get("id"), error=ErrorInfo(**data["error"])))
            else:
                items.append(parse_transcript(json.loads(raw), position + 1))
        results = self.runner.grade(items)
        return [(p[0], item, result) for p, item, result in zip(pending, items, results)]

    def _write(self, job_id: str, owner: int | None, graded: list) -> None:
        actor = Caller(key_id=owner, role="system", name=f"job {job_id}")
        with self.database.session() as session:
            errors = 0
            for position, item, result in graded:
                is_error = isinstance(result, ErrorRecord)
                errors += is_error
                if not is_error and isinstance(item, Transcript):
                    store.save_grade(session, item, result, self.runner.rubric, actor, job_id=job_id)
                session.add(JobResult(job_id=job_id, position=position, conversation_id=result.id,
                                      result=json.dumps(result_dict(result), ensure_ascii=False), is_error=is_error))
            session.execute(update(Job).where(Job.id == job_id).values(
                done=Job.done + len(graded), errors=Job.errors + errors, updated_at=utcnow()))
            done, total = session.execute(select(Job.done, Job.total).where(Job.id == job_id)).one()
            if done >= total:
                self._finish(session, job_id)
            session.commit()

    @staticmethod
    def _finish(session: Session, job_id: str) -> None:
        session.execute(update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE)).values(
            status="done", finished_at=utcnow(), updated_at=utcnow()))

    def _record_failure(self, job_id: str, exc: Exception) -> None:
        with self.database.session() as session:
            job = session.get(Job, job_id)
            if job is None:
                return
            job.failures += 1
            job.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if job.failures >= MAX_FAILURES:
                job.status, job.finished_at = "failed", utcnow()
            job.updated_at = utcnow()
            session.commit()
