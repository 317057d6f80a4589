"""Human reviews applied to a machine grade: a pure function, so the stored machine grade is
never edited and the effective grade can be recomputed at any time from the same inputs.

A review overrides item results (passed and/or points), the behavior labels of agent turns,
the red-line verdict or the final score, always with a reason. Dispute resolutions that
accept an item (fully or in part) become item overrides through `dispute_review`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from grader.codebook import check_behavior_ids
from grader.rubric.schema import Item, Rubric
from grader.scoring import score_dimension, total_score
from grader.types import DimensionResult, Grade, ItemResult, RedLineResult, TurnBehaviors

REVIEWER_RED_LINE = "reviewer_red_line"


class ReviewError(ValueError):
    """A review that does not fit the grade or rubric; `field` is the dotted path at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ItemOverride(_Input):
    """New result of one rubric item: `passed`, `points`, or both."""

    id: str = Field(min_length=1)
    passed: bool | None = None
    points: float | None = Field(default=None, ge=0)


class TurnOverride(_Input):
    """The behavior labels a reviewer assigns to one agent turn (replacing the machine's)."""

    index: int = Field(ge=0)
    behaviors: list[str]

    @field_validator("behaviors")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = check_behavior_ids(value)
        if unknown:
            raise ValueError(f"unknown behavior id(s) {unknown}; see the codebook")
        return list(dict.fromkeys(value))


class ReviewInput(_Input):
    """One review (or accepted dispute) as the pure function sees it."""

    reason: str = Field(min_length=1, max_length=4000)
    items: list[ItemOverride] = Field(default_factory=list)
    turns: list[TurnOverride] = Field(default_factory=list)
    score: float | None = Field(default=None, ge=0, le=100)
    red_line: bool | None = None
    source: Literal["review", "dispute"] = "review"

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required")
        return value.strip()


def rubric_item(rubric: Rubric, item_id: str) -> Item | None:
    """The rubric's item with this id, or None."""
    return next((it for dim in rubric.dimensions for it in dim.items if it.id == item_id), None)


def validate_review(review: ReviewInput, machine: Grade, rubric: Rubric) -> None:
    """Raise ReviewError (naming the field) when the review does not fit this grade and rubric."""
    seen: set[str] = set()
    for n, override in enumerate(review.items):
        item = rubric_item(rubric, override.id)
        if item is None or all(r.id != override.id for r in machine.items):
            raise ReviewError(f"items.{n}.id: no rubric item {override.id!r}", f"items.{n}.id")
        if override.id in seen:
            raise ReviewError(f"items.{n}.id: item {override.id!r} appears twice", f"items.{n}.id")
        seen.add(override.id)
        if override.passed is None and override.points is None:
            raise ReviewError(f"items.{n}: give `passed`, `points` or both", f"items.{n}")
        if override.points is not None and override.points > item.points:
            raise ReviewError(f"items.{n}.points: {override.points:g} exceeds the item's {item.points:g} points",
                              f"items.{n}.points")
    agent_turns = {t.index for t in machine.turns}
    indices: set[int] = set()
    for n, turn in enumerate(review.turns):
        if turn.index not in agent_turns:
            raise ReviewError(f"turns.{n}.index: turn {turn.index} is not an agent turn of this conversation",
                              f"turns.{n}.index")
        if turn.index in indices:
            raise ReviewError(f"turns.{n}.index: turn {turn.index} appears twice", f"turns.{n}.index")
        indices.add(turn.index)


def dispute_review(item_id: str, decision: str, reason: str, points: float | None, rubric: Rubric) -> ReviewInput | None:
    """The item override a dispute resolution stands for: accepted passes the item in full,
    partial grants `points`, rejected changes nothing (None)."""
    if decision == "rejected":
        return None
    if decision == "accepted":
        override = ItemOverride(id=item_id, passed=True)
    elif decision == "partial":
        item = rubric_item(rubric, item_id)
        if points is None:
            raise ReviewError("points: a partial decision needs `points`", "points")
        if item is not None and points > item.points:
            raise ReviewError(f"points: {points:g} exceeds the item's {item.points:g} points", "points")
        override = ItemOverride(id=item_id, points=points)
    else:
        raise ReviewError(f"decision: {decision!r} is not accepted, rejected or partial", "decision")
    return ReviewInput(reason=reason, items=[override], source="dispute")


def _overridden_item(result: ItemResult, item: Item, override: ItemOverride, reason: str) -> ItemResult:
    cap = item.points
    if override.points is not None:
        points = min(cap, override.points)
        passed = override.passed if override.passed is not None else (points > 0 if item.kind == "bonus" else points >= cap)
    else:
        passed = bool(override.passed)
        if passed or item.kind != "deduction":
            points = cap if passed else 0.0
        elif result.applicable and not result.passed:
            points = result.points  # the machine already deducted: keep its amount
        else:
            points = round(cap - min(cap, item.per_hit or cap), 2)
    return result.model_copy(update={
        "points": points, "passed": passed, "applicable": True,
        "max_points": 0.0 if item.kind == "bonus" else cap,
        "reason": f"人工复核改判：{reason}（机器判定：{result.reason}）",
    })


def _dimensions(rubric: Rubric, items: list[ItemResult]) -> list[DimensionResult]:
    dims = []
    for dim in rubric.dimensions:
        scored = score_dimension(dim, [r for r in items if r.dimension == dim.id])
        if scored is not None:
            dims.append(scored)
    return dims


def _red_lines(machine: Grade, verdict: bool | None, reason: str) -> list[RedLineResult]:
    if verdict is None:
        return list(machine.red_lines)
    if not verdict:
        return []
    return list(machine.red_lines) or [RedLineResult(id=REVIEWER_RED_LINE, label="人工判定红线", reason=reason)]


def _fails(rubric: Rubric, red_lines: list[RedLineResult]) -> bool:
    consequence = {rl.id: rl.consequence for rl in rubric.red_lines}
    # A red line the rubric does not know (the reviewer's, or one of an older rubric) fails.
    return any(consequence.get(rl.id, "fail") == "fail" for rl in red_lines)


@dataclass
class _Overrides:
    """What a sequence of reviews adds up to, later reviews winning."""

    items: dict[str, ItemResult]
    turns: dict[int, TurnBehaviors]
    notes: list[str]
    changed_items: bool = False
    score: float | None = None
    verdict: bool | None = None
    verdict_reason: str = ""

    def apply(self, review: ReviewInput, rubric: Rubric) -> None:
        for override in review.items:
            item = rubric_item(rubric, override.id)
            if item is None or override.id not in self.items:
                self.notes.append(f"人工复核：评分项 {override.id} 不在当前评分表中，改判未应用")
                continue
            self.items[override.id] = _overridden_item(self.items[override.id], item, override, review.reason)
            self.changed_items = True
        for turn in review.turns:
            if turn.index not in self.turns:
                self.notes.append(f"人工复核：第 {turn.index} 轮不是客服轮次，标签改判未应用")
                continue
            self.turns[turn.index] = self.turns[turn.index].model_copy(update={"behaviors": list(turn.behaviors)})
        if review.score is not None:
            self.score = review.score
        if review.red_line is not None:
            self.verdict, self.verdict_reason = review.red_line, review.reason


def effective_grade(machine: Grade, reviews: Sequence[ReviewInput], rubric: Rubric) -> Grade:
    """The machine grade with every review applied in order (a later override of the same
    item, turn, score or verdict wins). Item points are recomputed into dimensions, score and
    band as grader.scoring does; a red line that fails the conversation outranks a score
    override. Behavior overrides change labels only: items change through item overrides.
    Overrides that no longer fit the grade (another rubric) are skipped with a note."""
    if not reviews:
        return machine
    acc = _Overrides(items={r.id: r for r in machine.items}, turns={t.index: t for t in machine.turns},
                     notes=list(machine.notes))
    for review in reviews:
        acc.apply(review, rubric)
    items = [acc.items[r.id] for r in machine.items]
    dims = _dimensions(rubric, items) if acc.changed_items else list(machine.dimensions)
    red_lines = _red_lines(machine, acc.verdict, acc.verdict_reason)
    total = total_score(dims)  # equals the machine score unless a red line zeroed it
    if _fails(rubric, red_lines):
        if acc.score is not None:
            acc.notes.append("人工复核：红线一票否决，分数改判未应用")
        total, band = 0.0, rubric.grade_bands[-1].label
    else:
        total = total if acc.score is None else round(acc.score, 1)
        band = rubric.band(total)
    return machine.model_copy(update={
        "score": total, "grade": band, "red_line": bool(red_lines), "red_lines": red_lines,
        "turns": [acc.turns[t.index] for t in machine.turns], "items": items, "dimensions": dims,
        "notes": acc.notes,
    })
