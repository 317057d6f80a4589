"""Repetition: the same canned reply pasted again and again."""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Literal

from pydantic import Field

from grader.features.text import fold_width
from grader.features.transcript import TranscriptFeatures
from grader.rules.base import ConfiguredRule, RuleConfig, Scope, evidence_text
from grader.types import Evidence, Finding


class RepetitionConfig(RuleConfig):
    """`type: repetition`: `min_count` or more scoped turns of at least `min_chars` that are
    the same text (similarity at least `similarity`)."""

    type: Literal["repetition"]
    scope: Scope = Scope()
    min_count: int = Field(default=3, ge=2)
    min_chars: int = Field(default=8, ge=1)
    similarity: float = Field(default=0.9, gt=0, le=1)


def _key(text: str) -> str:
    return "".join(ch for ch in fold_width(text).lower() if ch.isalnum())


class RepetitionRule(ConfiguredRule):
    """The `repetition.v1` check: one finding per group of near-identical turns."""

    name = "repetition.v1"

    def _groups(self, features: TranscriptFeatures) -> list[list[int]]:
        groups: list[tuple[str, list[int]]] = []
        for i in self.config.scope.turns(features):
            key = _key(features.transcript.turns[i].text)
            if len(key) < self.config.min_chars:
                continue
            for head, members in groups:
                if head == key or SequenceMatcher(None, head, key).ratio() >= self.config.similarity:
                    members.append(i)
                    break
            else:
                groups.append((key, [i]))
        return [members for _, members in groups if len(members) >= self.config.min_count]

    def run(self, features: TranscriptFeatures) -> list[Finding]:
        label = self.config.label or self.id
        return [Finding(check=self.name, rule_id=self.id, source="rule",
                        evidence=[Evidence(turn=i, text=evidence_text(features, i)) for i in members],
                        explanation=f"{label}：同一话术重复发送{len(members)}次", details={"count": len(members)})
                for members in self._groups(features)]
