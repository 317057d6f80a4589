"""The lexicon/regex behavior tagger: a transparent, tested baseline."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from grader.behaviors.base import BehaviorTagger, TurnScores
from grader.codebook import BEHAVIORS
from grader.features.text import fold_width
from grader.types import Transcript

DEFAULT_LEXICON = Path(__file__).resolve().parents[1] / "resources" / "lexicon_tagger.yaml"


class _Patterns(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strong: list[str] = Field(default_factory=list)
    weak: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class LexiconSpec(BaseModel):
    """The lexicon file's schema."""

    model_config = ConfigDict(extra="forbid")
    version: str
    base_prob: float = Field(ge=0, le=1)
    strong_prob: float = Field(ge=0, le=1)
    weak_prob: float = Field(ge=0, le=1)
    behaviors: dict[str, _Patterns]


def _compile(patterns: list[str]) -> list[re.Pattern]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


class LexiconTagger(BehaviorTagger):
    """Scores a turn `strong_prob` when a strong pattern matches, `weak_prob` for a weak one."""

    name = "behavior_lexicon.v1"

    def __init__(self, path: str | Path = DEFAULT_LEXICON):
        self.path = Path(path)

    @cached_property
    def spec(self) -> LexiconSpec:
        spec = LexiconSpec.model_validate(yaml.safe_load(self.path.read_text(encoding="utf-8")))
        unknown = set(spec.behaviors) - set(BEHAVIORS)
        if unknown:
            raise ValueError(f"{self.path}: behaviors: unknown id(s) {sorted(unknown)}")
        return spec

    @property
    def version(self) -> str:  # type: ignore[override]
        return self.spec.version

    @cached_property
    def _compiled(self) -> dict[str, tuple[list, list, list]]:
        return {b: (_compile(p.strong), _compile(p.weak), _compile(p.exclude)) for b, p in self.spec.behaviors.items()}

    def load(self) -> None:
        self._compiled  # noqa: B018 - compiling is the loading

    def score_text(self, text: str) -> dict[str, float]:
        """Probability of each behavior for one agent turn's text."""
        folded = fold_width(text).lower().strip()
        out = {}
        for behavior in BEHAVIORS:
            strong, weak, exclude = self._compiled.get(behavior, ([], [], []))
            blocked = [m.span() for rx in exclude for m in rx.finditer(folded)]

            def hit(patterns):
                return any(not any(s < be and bs < e for bs, be in blocked)
                           for rx in patterns for s, e in (m.span() for m in rx.finditer(folded)))

            prob = self.spec.strong_prob if hit(strong) else self.spec.weak_prob if hit(weak) else self.spec.base_prob
            out[behavior] = prob
        return out

    def predict(self, transcripts: Sequence[Transcript]) -> list[TurnScores]:
        return [{i: self.score_text(t.turns[i].text) for i in t.agent_turn_indices()} for t in transcripts]
