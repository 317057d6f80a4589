"""Scoring: a pure function from findings, behaviors and a rubric to a grade."""

from __future__ import annotations

from grader.codebook import BEHAVIORS
from grader.features.transcript import TranscriptFeatures
from grader.rubric.conditions import Context, evaluate
from grader.rubric.schema import Dimension, Item, Rubric
from grader.types import DimensionResult, Finding, Grade, ItemResult, QualityPrediction, RedLineResult, TurnBehaviors


def _score_item(item: Item, dimension: str, ctx: Context) -> ItemResult:
    base = dict(id=item.id, label=item.label, dimension=dimension, kind=item.kind, source=item.result_source())
    if item.applies_if is not None:
        gate = evaluate(item.applies_if, ctx)
        if gate.value is not True:
            why = "不适用：" + (gate.reason if gate.value is False else gate.reason)
            return ItemResult(**base, points=0 if item.kind == "bonus" else item.points,
                              max_points=0 if item.kind == "bonus" else item.points, passed=True, applicable=False, reason=why)
    out = evaluate(item.when, ctx)
    if out.value is None:
        return ItemResult(**base, points=0 if item.kind == "bonus" else item.points,
                          max_points=0 if item.kind == "bonus" else item.points, passed=True, applicable=False,
                          reason="不适用：" + out.reason)
    evidence = out.evidence[:10]
    if item.kind == "deduction":
        if not out.value:  # nothing to deduct: no evidence to show
            return ItemResult(**base, points=item.points, max_points=item.points, passed=True, reason=out.reason)
        lost = item.points if item.per_hit is None else min(item.points, item.per_hit * max(1, out.hits))
        return ItemResult(**base, points=round(item.points - lost, 2), max_points=item.points, passed=False,
                          evidence=evidence, reason=f"扣{lost:g}分：{out.reason}")
    max_points = 0.0 if item.kind == "bonus" else item.points
    return ItemResult(**base, points=item.points if out.value else 0.0, max_points=max_points, passed=bool(out.value),
                      evidence=evidence, reason=out.reason)


def score_dimension(dim: Dimension, items: list[ItemResult]) -> DimensionResult | None:
    active = [r for r in items if r.applicable]
    max_points = sum(r.max_points for r in active)
    if max_points <= 0:
        return None
    points = min(max_points, sum(r.points for r in active))
    return DimensionResult(id=dim.id, label=dim.label, weight=dim.weight, points=round(points, 2),
                           max_points=max_points, score=round(dim.weight * points / max_points, 2))


def total_score(dims: list[DimensionResult]) -> float:
    """0-100: the dimensions' weighted scores over the weight of the dimensions that applied."""
    total_weight = sum(d.weight for d in dims)
    return round(100 * sum(d.score for d in dims) / total_weight, 1) if total_weight else 100.0


def _turn_behaviors(features: TranscriptFeatures) -> list[TurnBehaviors]:
    out = []
    for i in features.agent_turns:
        probs = features.behaviors.get(i, {})
        scores = {b: round(float(probs.get(b, 0.0)), 4) for b in BEHAVIORS}
        out.append(TurnBehaviors(index=i, speaker="agent", behaviors=features.behavior_labels(i), scores=scores))
    return out


def grade_conversation(
    features: TranscriptFeatures,
    findings: dict[str, list[Finding]],
    rubric: Rubric,
    skipped: dict[str, str] | None = None,
    model_info: dict[str, str] | None = None,
) -> Grade:
    """The grade of one conversation: items, dimensions, red lines, score, band, per-turn behaviors."""
    ctx = Context(features, findings, dict(skipped or {}), {r.id: r.label for r in rubric.rules if r.label})
    items: list[ItemResult] = []
    dims: list[DimensionResult] = []
    for dim in rubric.dimensions:
        results = [_score_item(item, dim.id, ctx) for item in dim.items]
        items += results
        scored = score_dimension(dim, results)
        if scored is not None:
            dims.append(scored)
    score = total_score(dims)
    red_lines, fail = [], False
    for rl in rubric.red_lines:
        out = evaluate(rl.when, ctx)
        if out.value:
            red_lines.append(RedLineResult(id=rl.id, label=rl.label, evidence=out.evidence[:10], reason=out.reason))
            fail = fail or rl.consequence == "fail"
    if fail:
        score = 0.0
    quality = ({k: QualityPrediction(**v) for k, v in features.quality.items()} if features.quality else None)
    return Grade(
        id=features.transcript.id, score=score, grade=rubric.grade_bands[-1].label if fail else rubric.band(score),
        red_line=bool(red_lines), red_lines=red_lines, turns=_turn_behaviors(features), items=items,
        dimensions=dims, notes=sorted(set((skipped or {}).values())), quality=quality,
        rubric={"id": rubric.id, "version": rubric.version}, model=dict(model_info or {}),
    )
