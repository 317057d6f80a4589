"""Per-transcript features computed once and shared by every check."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from grader.features.text import fold_width
from grader.types import Transcript


@dataclass
class TranscriptFeatures:
    """Derived views of one transcript. `behaviors` is filled by the behavior tagger."""

    transcript: Transcript
    behaviors: dict[int, dict[str, float]] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    quality: dict[str, dict] | None = None
    hits: dict[str, list] = field(default_factory=dict)  # rule id -> findings, filled in rule order

    @cached_property
    def folded(self) -> list[str]:
        return [fold_width(t.text) for t in self.transcript.turns]

    @cached_property
    def agent_turns(self) -> list[int]:
        return self.transcript.agent_turn_indices()

    @cached_property
    def customer_turns(self) -> list[int]:
        return [i for i, t in enumerate(self.transcript.turns) if t.speaker == "customer"]

    def has_behavior(self, turn: int, behavior: str, min_prob: float | None = None) -> bool:
        """Whether the tagger assigned `behavior` to `turn` (at its threshold, or `min_prob`)."""
        prob = self.behaviors.get(turn, {}).get(behavior, 0.0)
        return prob >= (min_prob if min_prob is not None else self.thresholds.get(behavior, 0.5))

    def behavior_labels(self, turn: int) -> list[str]:
        return [b for b in self.behaviors.get(turn, {}) if self.has_behavior(turn, b)]


def features_for(transcript: Transcript) -> TranscriptFeatures:
    """Features of one transcript, with no behaviors yet."""
    return TranscriptFeatures(transcript)
