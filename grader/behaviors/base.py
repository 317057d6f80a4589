"""The BehaviorTagger interface, and the check that turns its output into findings."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from grader.codebook import BEHAVIOR_NAMES_ZH, BEHAVIORS
from grader.features.transcript import TranscriptFeatures
from grader.types import Evidence, Finding, Transcript

# turn index -> behavior id -> probability
TurnScores = dict[int, dict[str, float]]


class BehaviorTagger(ABC):
    """Gives each agent turn of a transcript a probability for each codebook behavior.

    `thresholds` decide which behaviors a turn is assigned; `predict` works on batches so a
    model can batch turns across conversations.
    """

    name: str = "behavior_tagger.v1"
    version: str = "0"
    behaviors: tuple[str, ...] = BEHAVIORS

    @property
    def thresholds(self) -> dict[str, float]:
        return {b: 0.5 for b in self.behaviors}

    def load(self) -> None:
        """Load weights or lexicons; calling it twice is harmless."""

    @abstractmethod
    def predict(self, transcripts: Sequence[Transcript]) -> list[TurnScores]:
        """Per transcript: agent turn index -> behavior id -> probability in 0..1."""

    def info(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


class BehaviorCheck:
    """Adapts a tagger's scores (already in the features) to the check interface."""

    emits = BEHAVIORS
    id = "behaviors"

    def __init__(self, tagger: BehaviorTagger):
        self.tagger = tagger
        self.name = tagger.name

    def load(self) -> None:
        self.tagger.load()

    def run(self, features: TranscriptFeatures) -> list[Finding]:
        findings = []
        for turn in features.agent_turns:
            for behavior in features.behavior_labels(turn):
                prob = features.behaviors[turn][behavior]
                findings.append(Finding(
                    check=self.name, rule_id=behavior, source="model", score=min(1.0, max(0.0, prob)),
                    evidence=[Evidence(turn=turn, text=features.transcript.turns[turn].text[:120])],
                    explanation=f"第{turn}轮：{BEHAVIOR_NAMES_ZH[behavior]}（{prob:.2f}）",
                    details={"tagger": self.tagger.name, "version": self.tagger.version},
                ))
        return findings
