"""Frozen pydantic models of the data contracts: transcripts in, grades out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grader.codebook import check_behavior_ids
from grader.features.text import clean_text
from grader.features.pii import mask_personal_numbers

Speaker = Literal["agent", "customer", "system"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Turn(BaseModel):
    """One turn: everything one speaker says before the other answers."""

    model_config = ConfigDict(frozen=True, extra="allow")

    speaker: Speaker
    text: str = ""
    start: float | None = Field(default=None, ge=0)
    end: float | None = Field(default=None, ge=0)
    labels: list[str] | None = None

    @field_validator("text", mode="before")
    @classmethod
    def _clean(cls, value: Any) -> Any:
        if value is None:
            return ""
        return clean_text(value) if isinstance(value, str) else value

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = check_behavior_ids(value)
            if unknown:
                raise ValueError(f"unknown behavior id(s) {unknown}; see the codebook")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "Turn":
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self

    @property
    def timed(self) -> bool:
        return self.start is not None and self.end is not None


class Transcript(BaseModel):
    """One conversation, as in `contracts.md`."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str = Field(min_length=1)
    turns: list[Turn] = Field(min_length=1)
    channel: str | None = None
    agent_id: str | None = None
    started_at: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    split: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def timed(self) -> bool:
        """True when every turn carries start and end."""
        return all(t.timed for t in self.turns)

    def agent_turn_indices(self) -> list[int]:
        return [i for i, t in enumerate(self.turns) if t.speaker == "agent"]


class Evidence(_Frozen):
    """A place in the transcript that justifies a result; personal numbers are masked."""

    turn: int
    text: str
    start: int | None = None
    end: int | None = None

    @field_validator("text")
    @classmethod
    def _mask(cls, value: str) -> str:
        return mask_personal_numbers(value)


class Finding(_Frozen):
    """One hit of a check (rule or model) with its evidence and a one-line explanation."""

    check: str
    rule_id: str
    source: Literal["rule", "model"]
    score: float = Field(default=1.0, ge=0, le=1)
    evidence: list[Evidence] = Field(default_factory=list)
    explanation: str
    details: dict[str, Any] = Field(default_factory=dict)


class TurnBehaviors(_Frozen):
    index: int
    speaker: Speaker
    behaviors: list[str]
    scores: dict[str, float]


class ItemResult(_Frozen):
    id: str
    label: str
    dimension: str
    kind: Literal["required", "bonus", "deduction"]
    points: float
    max_points: float
    passed: bool
    applicable: bool = True
    source: Literal["rule", "model", "condition"]
    evidence: list[Evidence] = Field(default_factory=list)
    reason: str


class DimensionResult(_Frozen):
    id: str
    label: str
    weight: float
    score: float
    points: float
    max_points: float


class RedLineResult(_Frozen):
    id: str
    label: str
    evidence: list[Evidence] = Field(default_factory=list)
    reason: str


class QualityPrediction(_Frozen):
    distribution: dict[str, float]
    expected: float


class Grade(_Frozen):
    """The grade of one conversation (`contracts.md`, Grade)."""

    id: str
    score: float
    grade: str
    red_line: bool
    red_lines: list[RedLineResult] = Field(default_factory=list)
    turns: list[TurnBehaviors]
    items: list[ItemResult]
    dimensions: list[DimensionResult] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    quality: dict[str, QualityPrediction] | None = None
    rubric: dict[str, str] = Field(default_factory=dict)
    model: dict[str, str] = Field(default_factory=dict)


class ErrorInfo(_Frozen):
    code: str
    message: str
    field: str | None = None
    line: int | None = None
    file: str | None = None


class ErrorRecord(_Frozen):
    """Stands in for a conversation that cannot be graded."""

    id: str | None
    error: ErrorInfo
