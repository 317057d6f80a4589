"""Sequence conditions: after a trigger turn, one of the next agent turns must carry a behavior."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.codebook import BEHAVIORS
from grader.features.transcript import TranscriptFeatures
from grader.rules.base import ConfiguredRule, RuleConfig, evidence_text
from grader.types import Evidence, Finding


class Trigger(BaseModel):
    """A turn that starts the expectation: another rule's hit, or a behavior of a turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: str | None = None
    behavior: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "Trigger":
        if (self.rule is None) == (self.behavior is None):
            raise ValueError("give exactly one of `rule` and `behavior`")
        if self.behavior is not None and self.behavior not in BEHAVIORS:
            raise ValueError(f"unknown behavior id {self.behavior!r}")
        return self


class SequenceConfig(RuleConfig):
    """`type: sequence`: fire for each trigger not followed, within `within` agent turns,
    by an agent turn carrying one of `expect` (behavior ids)."""

    type: Literal["sequence"]
    trigger: Trigger
    expect: list[str] = Field(min_length=1)
    within: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _known(self) -> "SequenceConfig":
        unknown = [b for b in self.expect if b not in BEHAVIORS]
        if unknown:
            raise ValueError(f"expect: unknown behavior id(s) {unknown}")
        return self


class SequenceRule(ConfiguredRule):
    """The `sequence.v1` check (runs after the behavior tagger and after the trigger rule)."""

    name = "sequence.v1"

    def _trigger_turns(self, features: TranscriptFeatures) -> list[int]:
        trig = self.config.trigger
        if trig.rule is not None:
            return sorted({e.turn for f in features.hits.get(trig.rule, []) for e in f.evidence})
        return [i for i in range(len(features.transcript.turns)) if features.has_behavior(i, trig.behavior)]

    def run(self, features: TranscriptFeatures) -> list[Finding]:
        findings = []
        expect = "、".join(self.config.expect)
        for t in self._trigger_turns(features):
            following = [i for i in features.agent_turns if i > t][: self.config.within]
            if any(features.has_behavior(i, b) for i in following for b in self.config.expect):
                continue
            turns = [t] + following
            findings.append(Finding(
                check=self.name, rule_id=self.id, source="rule",
                evidence=[Evidence(turn=i, text=evidence_text(features, i)) for i in turns],
                explanation=f"{self.config.label or self.id}：第{t}轮之后的客服回复未出现{expect}",
                details={"trigger_turn": t, "expected": self.config.expect},
            ))
        return findings
