"""The grading engine: handed its rubric, behavior tagger and optional quality model, never
building defaults itself (the CLI and the service choose them)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from grader.behaviors.base import BehaviorCheck, BehaviorTagger
from grader.features.transcript import TranscriptFeatures
from grader.readers import Parsed
from grader.rubric.schema import Rubric
from grader.rules.base import CheckSkipped
from grader.rules.registry import build_rule
from grader.scoring import grade_conversation
from grader.types import ErrorInfo, ErrorRecord, Finding, Grade, Transcript


class QualityModel(Protocol):
    """Conversation-level quality dimensions: per transcript, dim -> {distribution, expected}."""

    name: str
    version: str

    def predict(self, transcripts: Sequence[Transcript]) -> list[dict[str, dict]]: ...


class Grader:
    """Grades transcripts with one rubric, one behavior tagger and, optionally, a quality model."""

    def __init__(self, rubric: Rubric, tagger: BehaviorTagger, quality_model: QualityModel | None = None):
        self.rubric = rubric
        self.tagger = tagger
        self.quality_model = quality_model
        self.behavior_check = BehaviorCheck(tagger)
        self.rules = [build_rule(cfg, rubric.base_dir) for cfg in rubric.rules]
        self._loaded = False

    def load(self) -> None:
        """Load the tagger and the rules (idempotent)."""
        if not self._loaded:
            self.behavior_check.load()
            for rule in self.rules:
                rule.load()
            self._loaded = True

    def model_info(self) -> dict[str, str]:
        info = {"behavior_tagger": self.tagger.name, "behavior_version": self.tagger.version}
        if self.quality_model is not None:
            info.update(quality_model=self.quality_model.name, quality_version=self.quality_model.version)
        return info

    def _features(self, transcripts: Sequence[Transcript]) -> list[TranscriptFeatures]:
        scores = self.tagger.predict(transcripts)
        quality = self.quality_model.predict(transcripts) if self.quality_model else [None] * len(transcripts)
        thresholds = self.tagger.thresholds
        return [TranscriptFeatures(t, behaviors=s, thresholds=thresholds, quality=q)
                for t, s, q in zip(transcripts, scores, quality)]

    def _grade_features(self, features: TranscriptFeatures) -> Grade:
        findings: dict[str, list[Finding]] = {}
        skipped: dict[str, str] = {}
        for rule in self.rules:
            try:
                findings[rule.id] = rule.run(features)
            except CheckSkipped as why:
                skipped[rule.id] = str(why)
                findings[rule.id] = []
            features.hits[rule.id] = findings[rule.id]
        return grade_conversation(features, findings, self.rubric, skipped, self.model_info())

    def grade(self, transcript: Transcript) -> Grade:
        """Grade one conversation."""
        return self.grade_batch([transcript])[0]

    def grade_batch(self, transcripts: Sequence[Transcript]) -> list[Grade]:
        """Grade several conversations; the tagger sees them as one batch."""
        self.load()
        return [self._grade_features(f) for f in self._features(transcripts)]

    def _safe_batch(self, transcripts: list[Transcript]) -> list[Grade | ErrorRecord]:
        try:
            return list(self.grade_batch(transcripts))
        except Exception:  # noqa: BLE001 - isolate the conversation that fails, grade the rest
            if len(transcripts) == 1:
                return [_failure(transcripts[0])]
            return [r for t in transcripts for r in self._safe_batch([t])]

    def grade_stream(self, items: Iterable[Parsed | Transcript | ErrorRecord], batch_size: int = 32) -> Iterator[Grade | ErrorRecord]:
        """Grades in input order; error records pass through, one failure never stops the batch."""
        pending: list[Transcript | ErrorRecord] = []

        def flush() -> Iterator[Grade | ErrorRecord]:
            todo = [p for p in pending if isinstance(p, Transcript)]
            graded = iter(self._safe_batch(todo)) if todo else iter(())
            for p in pending:
                yield p if isinstance(p, ErrorRecord) else next(graded)
            pending.clear()

        for item in items:
            pending.append(item.item if isinstance(item, Parsed) else item)
            if len(pending) >= batch_size:
                yield from flush()
        yield from flush()


def _failure(transcript: Transcript) -> ErrorRecord:
    import traceback

    detail = traceback.format_exc(limit=1).strip().splitlines()[-1]
    return ErrorRecord(id=transcript.id, error=ErrorInfo(code="grading_failed", message=f"could not grade {transcript.id!r}: {detail}"))
