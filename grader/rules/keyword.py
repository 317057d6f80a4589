"""Phrase lists and regular expressions, with word boundaries, negation and exclusions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from grader.features.text import fold_width, is_negated, word_boundaries
from grader.features.transcript import TranscriptFeatures
from grader.rules.base import ConfiguredRule, RuleConfig, Scope, evidence_text
from grader.types import Evidence, Finding


class KeywordConfig(RuleConfig):
    """`type: keyword`: fire on phrases/patterns in the scoped turns.

    mode: `any` (each hit is a finding), `all` (every phrase somewhere in scope),
    `at_least` (at least `count` distinct phrases), `none` (no phrase in scope).
    match: `word` (the hit must start and end on jieba word boundaries) or `substring`.
    negation: `reject` drops hits preceded by a negation cue in the same clause
    (「不满意」 is no 「满意」), `require` keeps only those, `ignore` keeps all.
    """

    type: Literal["keyword"]
    scope: Scope = Scope()
    phrases: list[str] = Field(default_factory=list)
    phrases_file: str | None = None
    patterns: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    mode: Literal["any", "all", "at_least", "none"] = "any"
    count: int = Field(default=1, ge=1)
    match: Literal["word", "substring"] = "substring"
    negation: Literal["reject", "require", "ignore"] = "ignore"
    negation_window: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _has_terms(self) -> "KeywordConfig":
        if not (self.phrases or self.phrases_file or self.patterns):
            raise ValueError("give `phrases`, `phrases_file` or `patterns`")
        for field_name in ("patterns", "exclude"):
            for i, pattern in enumerate(getattr(self, field_name)):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{field_name}.{i}: invalid regular expression {pattern!r}: {exc}") from exc
        return self


def read_phrase_file(path: Path) -> list[str]:
    """One phrase a line; blank lines and `#` comments ignored."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


@dataclass(frozen=True)
class _Hit:
    turn: int
    start: int
    end: int
    term: str


class KeywordRule(ConfiguredRule):
    """The `keyword.v1` check."""

    name = "keyword.v1"

    def __init__(self, config: KeywordConfig, base_dir: Path | None = None):
        super().__init__(config, base_dir)
        phrases = list(config.phrases)
        if config.phrases_file:
            path = Path(config.phrases_file)
            phrases += read_phrase_file(path if path.is_absolute() else (base_dir or Path.cwd()) / path)
        self.terms: list[tuple[str, re.Pattern]] = [(p, re.compile(re.escape(fold_width(p).lower()))) for p in phrases]
        self.terms += [(p, re.compile(p, re.IGNORECASE)) for p in config.patterns]
        self.excludes = [re.compile(p, re.IGNORECASE) for p in config.exclude]

    @cached_property
    def _needs_words(self) -> bool:
        return self.config.match == "word"

    def _turn_hits(self, text: str, turn: int) -> list[_Hit]:
        folded = fold_width(text).lower()
        excluded = [m.span() for rx in self.excludes for m in rx.finditer(folded)]
        starts, ends = word_boundaries(text) if self._needs_words else (None, None)
        hits = []
        for term, rx in self.terms:
            for m in rx.finditer(folded):
                s, e = m.span()
                if s == e or any(s < xe and xs < e for xs, xe in excluded):
                    continue
                if starts is not None and (s not in starts or e not in ends):
                    continue
                negated = is_negated(folded, s, self.config.negation_window)
                if (self.config.negation == "reject" and negated) or (self.config.negation == "require" and not negated):
                    continue
                hits.append(_Hit(turn, s, e, term))
        return hits

    def _finding(self, hits: list[_Hit], features: TranscriptFeatures, explanation: str) -> Finding:
        evidence = [Evidence(turn=h.turn, start=h.start, end=h.end, text=evidence_text(features, h.turn, h.start, h.end)) for h in hits]
        return Finding(check=self.name, rule_id=self.id, source="rule", evidence=evidence, explanation=explanation,
                       details={"terms": sorted({h.term for h in hits})})

    def run(self, features: TranscriptFeatures) -> list[Finding]:
        turns = self.config.scope.turns(features)
        hits = [h for i in turns for h in self._turn_hits(features.transcript.turns[i].text, i)]
        label = self.config.label or self.id
        mode = self.config.mode
        if mode == "any":
            return [self._finding([h], features, self._explain(f"{label}：命中「{h.term}」", h.term)) for h in hits]
        distinct = {h.term for h in hits}
        if mode == "none":
            if hits:
                return []
            evidence = [Evidence(turn=i, text=evidence_text(features, i)) for i in turns[:3]]
            return [Finding(check=self.name, rule_id=self.id, source="rule", evidence=evidence,
                            explanation=self._explain(f"{label}：{self.config.scope.describe()}未出现任何指定用语", ""))]
        needed = len(self.terms) if mode == "all" else self.config.count
        if len(distinct) >= needed:
            return [self._finding(hits, features, self._explain(f"{label}：命中{len(distinct)}个用语", "、".join(sorted(distinct))))]
        return []

    def _explain(self, default: str, term: str) -> str:
        return self.config.explanation.format(text=term) if self.config.explanation else default
