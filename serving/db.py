"""Storage: SQLAlchemy 2 models and the engine/session factory.

Grades, transcripts and review bodies are JSON *text* columns so SQLite and PostgreSQL store
and return exactly the same thing. Machine grades, reviews and the audit log are append-only;
the effective_* tables are a cache recomputed from them (by grader.review) for search and
statistics.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import (Boolean, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text,
                        UniqueConstraint, create_engine, event, make_url)
from sqlalchemy.engine import URL, Engine
from sqlalchemy.types import TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


Stamp = UTCDateTime()


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(Stamp, nullable=True)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    transcript: Mapped[str] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(String(200), index=True, nullable=True)
    team: Mapped[str | None] = mapped_column(String(200), index=True, nullable=True)
    started_at: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_date: Mapped[str | None] = mapped_column(String(10), index=True, nullable=True)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class MachineGrade(Base):
    __tablename__ = "machine_grades"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    grade_json: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    grade: Mapped[str] = mapped_column(String(32))
    red_line: Mapped[bool] = mapped_column(Boolean)
    rubric_id: Mapped[str] = mapped_column(String(100))
    rubric_version: Mapped[str] = mapped_column(String(100))
    model_info: Mapped[str] = mapped_column(Text)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), index=True, nullable=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    machine_grade_id: Mapped[int] = mapped_column(ForeignKey("machine_grades.id"))
    reviewer_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16), default="review")
    dispute_id: Mapped[int | None] = mapped_column(ForeignKey("disputes.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    item_id: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    filed_by_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    filed_by: Mapped[str] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolver_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    resolver: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(Stamp, nullable=True)


class AuditRecord(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    actor_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    actor_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[str | None] = mapped_column(String(200), index=True, nullable=True)
    before: Mapped[str | None] = mapped_column(Text, nullable=True)
    after: Mapped[str | None] = mapped_column(Text, nullable=True)
    why: Mapped[str | None] = mapped_column(Text, nullable=True)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Stamp, nullable=True)


class JobItem(Base):
    __tablename__ = "job_items"
    __table_args__ = (UniqueConstraint("job_id", "position", name="uq_job_items_job_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    position: Mapped[int] = mapped_column(Integer)
    input: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class JobResult(Base):
    __tablename__ = "job_results"
    __table_args__ = (UniqueConstraint("job_id", "position", name="uq_job_results_job_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    position: Mapped[int] = mapped_column(Integer)
    conversation_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    result: Mapped[str] = mapped_column(Text)
    is_error: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency"
    __table_args__ = (UniqueConstraint("api_key_id", "route", "key", name="uq_idempotency_key_route"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    route: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(255))
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class EffectiveGrade(Base):
    """Cache: the effective grade of each conversation (latest machine grade + reviews)."""

    __tablename__ = "effective_grades"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    machine_grade_id: Mapped[int] = mapped_column(ForeignKey("machine_grades.id"))
    machine_score: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float, index=True)
    grade: Mapped[str] = mapped_column(String(32))
    red_line: Mapped[bool] = mapped_column(Boolean)
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    relabeled: Mapped[bool] = mapped_column(Boolean, default=False)
    grade_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class EffectiveBehavior(Base):
    """Cache: one row per (conversation, agent turn, effective behavior)."""

    __tablename__ = "effective_behaviors"
    __table_args__ = (Index("ix_effective_behaviors_behavior", "behavior", "conversation_id"),)

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    turn: Mapped[int] = mapped_column(Integer, primary_key=True)
    behavior: Mapped[str] = mapped_column(String(50), primary_key=True)


class EffectiveFailure(Base):
    """Cache: a failed item or fired red line of an effective grade, one row per evidence turn
    (turn null when it has no evidence)."""

    __tablename__ = "effective_failures"
    __table_args__ = (Index("ix_effective_failures_kind_ref", "kind", "ref_id", "conversation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[str] = mapped_column(String(100))
    turn: Mapped[int | None] = mapped_column(Integer, nullable=True)


def normalize_url(url: str | URL) -> URL:
    """`postgresql://` with whichever driver is installed (psycopg 3 first); `postgres://` too."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        driver = "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"
        parsed = parsed.set(drivername=f"postgresql+{driver}")
    return parsed


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun by the hook below
        cur = dbapi_conn.cursor()
        for pragma in ("foreign_keys=ON", "busy_timeout=30000", "journal_mode=WAL", "synchronous=NORMAL"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        # IMMEDIATE takes the write lock up front: the worker thread and request threads then
        # queue on busy_timeout instead of failing when a read transaction upgrades to a write.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """One database: its engine and session factory."""

    def __init__(self, url: str | URL):
        self.url = normalize_url(url)
        if self.url.get_backend_name() == "sqlite":
            self.engine = _sqlite_engine(self.url)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that is rolled back (if not committed) and closed on exit."""
        session = self.sessions()
        try:
            yield session
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
