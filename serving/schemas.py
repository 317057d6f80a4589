"""Response models: what the OpenAPI document promises for each route. Grades are the
contract's JSON objects (grader.types.Grade), kept as plain objects here."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorInfo(BaseModel):
    code: str
    message: str
    field: str | None = Field(None, description="dotted path of the field at fault, e.g. turns.0.speaker")


class ErrorBody(BaseModel):
    """Body of every non-2xx answer."""

    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok"]
    database: str
    rubric: dict[str, str]
    model: dict[str, str]


class GradeList(BaseModel):
    results: list[dict[str, Any]] = Field(description="grades or error records, in input order")


class JobCreated(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    total: int


class JobStatus(JobCreated):
    done: int = Field(description="conversations with a result (error records included)")
    errors: int = Field(description="results that are error records")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class Page(BaseModel):
    total: int
    next_offset: int | None


class JobList(Page):
    items: list[JobStatus]


class JobResults(Page):
    items: list[dict[str, Any]] = Field(description="grades or error records, in input order")
    status: str


class ReviewOut(BaseModel):
    id: int
    conversation_id: str
    machine_grade_id: int
    reviewer: str
    source: Literal["review", "dispute"]
    dispute_id: int | None = None
    reason: str
    items: list[dict[str, Any]]
    turns: list[dict[str, Any]]
    score: float | None = None
    red_line: bool | None = None
    created_at: datetime


class ScoreSummary(BaseModel):
    score: float
    grade: str
    red_line: bool


class ReviewCreated(ReviewOut):
    machine: ScoreSummary
    effective: ScoreSummary


class DisputeOut(BaseModel):
    id: int
    conversation_id: str
    item: str
    reason: str
    status: Literal["open", "accepted", "rejected", "partial"]
    filed_by: str
    created_at: datetime
    resolution: dict[str, Any] | None = None
    resolver: str | None = None
    resolved_at: datetime | None = None


class DisputeList(Page):
    items: list[DisputeOut]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str | None
    action: str
    object_type: str
    object_id: str
    before: Any = None
    after: Any = None
    why: str | None = None


class GradeVersion(BaseModel):
    id: int
    score: float
    grade: str
    red_line: bool
    job_id: str | None = None
    rubric: dict[str, str]
    model: dict[str, str]
    created_at: datetime


class ConversationOut(BaseModel):
    id: str
    agent_id: str | None
    team: str | None
    started_at: str | None
    transcript: dict[str, Any]
    machine_grade: dict[str, Any]
    effective_grade: dict[str, Any]
    scores: dict[Literal["machine", "effective"], ScoreSummary]
    reviews: list[ReviewOut]
    disputes: list[DisputeOut]
    audit: list[AuditOut]
    history: list[GradeVersion] = Field(description="every machine grade of the conversation, oldest first")


class ConversationRow(BaseModel):
    id: str
    agent_id: str | None
    team: str | None
    started_at: str | None
    machine_score: float
    score: float
    grade: str
    red_line: bool
    reviewed: bool


class ConversationList(Page):
    items: list[ConversationRow]


class ContextTurn(BaseModel):
    index: int
    speaker: str | None
    text: str


class Example(BaseModel):
    conversation_id: str
    turn: int | None = Field(description="null for a conversation-level hit")
    speaker: str | None
    text: str | None
    context: list[ContextTurn] = Field(description="the turns before and after")
    behaviors: list[str]
    score: float
    grade: str
    red_line: bool
    agent_id: str | None
    team: str | None
    started_at: str | None


class ExamplePage(Page):
    items: list[Example]


class Agreement(BaseModel):
    id: str
    n: int
    agreement: float | None
    kappa: float | None = Field(description="Cohen's kappa; null when undefined")
    confusion: dict[str, int]


class AgentStats(BaseModel):
    agent_id: str | None
    n: int
    mean_score: float
    mean_machine_score: float
    reviewed: int


class AgreementStats(BaseModel):
    reviewed_conversations: int
    items: list[Agreement]
    behaviors: list[Agreement]
    agents: list[AgentStats]


class KeyBody(BaseModel):
    """Body of POST /v1/keys."""

    model_config = {"extra": "forbid"}

    role: Literal["admin", "reviewer", "agent", "client"]
    name: str = Field(min_length=1, max_length=200, description="for agent keys: the transcripts' agent_id")


class KeyOut(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    prefix: str
    role: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="the key in clear: shown this once, stored hashed")


class RubricInfo(BaseModel):
    id: str
    version: str
    name: str
    rubric: dict[str, Any]
    model: dict[str, str]
