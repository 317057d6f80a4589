"""Response models of the workbench's endpoints (documented in the OpenAPI document)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from serving.schemas import ConversationRow, Page


class QueueReason(BaseModel):
    code: str = Field(description="red_line | dispute | fragile | uncertain | near_band")
    label: str = Field(description="short Chinese label for the reason column")
    detail: str
    weight: float = Field(description="this reason's share of the priority")


class QueueRow(ConversationRow):
    open_disputes: int
    priority: float = Field(description="sum of the reasons' weights; higher first")
    reasons: list[QueueReason]


class QueueFacets(BaseModel):
    agents: list[str]
    teams: list[str]
    grades: list[str]


class QueuePage(Page):
    items: list[QueueRow]
    facets: QueueFacets = Field(description="values the filters can take")


class Bin(BaseModel):
    low: float
    high: float
    count: int


class GradeCount(BaseModel):
    grade: str
    count: int = Field(description="effective grades in this band")
    machine: int = Field(description="machine grades in this band")


class FailedItem(BaseModel):
    id: str
    label: str
    dimension: str
    kind: str
    count: int = Field(description="conversations where the item failed (effective grade)")
    rate: float


class RedLineCount(BaseModel):
    id: str
    label: str
    count: int


class AgentRow(BaseModel):
    agent_id: str | None
    team: str | None
    n: int
    mean_score: float
    mean_machine_score: float
    red_lines: int
    reviewed: int


class Overview(BaseModel):
    total: int
    reviewed: int
    red_line: int
    mean_score: float | None
    mean_machine_score: float | None
    histogram: dict[str, list[Bin]] = Field(description="`effective` and `machine`: ten 10-point bins")
    grades: list[GradeCount]
    failed_items: list[FailedItem]
    red_lines: list[RedLineCount]
    agents: list[AgentRow]


class BehaviorInfo(BaseModel):
    id: str
    label: str
    threshold: float


class ItemInfo(BaseModel):
    id: str
    label: str
    kind: str
    points: float


class DimensionInfo(BaseModel):
    id: str
    label: str
    weight: float
    items: list[ItemInfo]


class Me(BaseModel):
    role: str
    name: str
    behaviors: list[BehaviorInfo] | None = None
    dimensions: list[DimensionInfo] | None = None
    red_lines: list[dict[str, str]] | None = None
    grade_bands: list[dict[str, str | float]] | None = None
    rubric: dict[str, str] | None = None
