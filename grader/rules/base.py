"""The one interface every check (rule or model) implements, and scoping of turns."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.features.transcript import TranscriptFeatures
from grader.types import Finding


class CheckSkipped(Exception):
    """Raised by a check that cannot run on a transcript (e.g. no timestamps); becomes a note."""


@runtime_checkable
class Check(Protocol):
    """A rule or a model-based check: versioned name, what it emits, idempotent load, run."""

    name: str
    id: str
    emits: tuple[str, ...]

    def load(self) -> None: ...

    def run(self, features: TranscriptFeatures) -> list[Finding]: ...


class Near(BaseModel):
    """Restrict to turns within `before`/`after` turns of another rule's hit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: str
    before: int = Field(default=0, ge=0)
    after: int = Field(default=0, ge=0)


class Scope(BaseModel):
    """Which turns a rule looks at: by speaker, and first/last N turns of that speaker."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    speaker: Literal["agent", "customer", "system", "any"] = "agent"
    first: int | None = Field(default=None, ge=1)
    last: int | None = Field(default=None, ge=1)
    near: Near | None = None

    @model_validator(mode="after")
    def _one_window(self) -> "Scope":
        if self.first is not None and self.last is not None:
            raise ValueError("give at most one of `first` and `last`")
        return self

    def turns(self, features: TranscriptFeatures) -> list[int]:
        """Turn indices in scope (`near` reads earlier rules' hits from the features)."""
        turns = features.transcript.turns
        chosen = [i for i, t in enumerate(turns) if self.speaker == "any" or t.speaker == self.speaker]
        if self.first is not None:
            chosen = chosen[: self.first]
        if self.last is not None:
            chosen = chosen[-self.last :]
        if self.near is not None:
            anchors = {e.turn for f in features.hits.get(self.near.rule, []) for e in f.evidence}
            chosen = [i for i in chosen if any(a - self.near.before <= i <= a + self.near.after for a in anchors)]
        return chosen

    def describe(self) -> str:
        who = {"agent": "客服", "customer": "客户", "system": "系统", "any": "任意"}[self.speaker]
        if self.first:
            return f"{who}前{self.first}轮"
        if self.last:
            return f"{who}后{self.last}轮"
        return f"{who}所有轮次"


class RuleConfig(BaseModel):
    """Fields shared by every rule family's YAML entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = ""
    explanation: str | None = None


def evidence_text(features: TranscriptFeatures, turn: int, start: int | None = None, end: int | None = None) -> str:
    """Text of a turn, or of a span of it with a little context."""
    text = features.transcript.turns[turn].text
    if start is None or end is None:
        return text if len(text) <= 120 else text[:117] + "..."
    return text[max(0, start - 8) : end + 8]


class ConfiguredRule:
    """Base of the rule families: built from a validated config, nothing to load."""

    name = "rule.v1"
    emits = ("hit",)

    def __init__(self, config: RuleConfig, base_dir=None):
        self.config = config
        self.id = config.id

    def load(self) -> None:
        """Rules are ready once built."""
