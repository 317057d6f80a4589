"""Which conversations a reviewer should open first: a pure function of one effective grade.

A conversation's priority is the sum of the weights of its reasons:

- `red_line`: a red line fired (每条红线);
- `dispute`: an agent's dispute is waiting for a decision;
- `fragile`: an item or red line whose verdict hangs on a behavior probability within
  `prob_margin` of its decision threshold (one tagger wobble would flip it);
- `uncertain`: other behavior probabilities near their thresholds (low model confidence);
- `near_band`: the score within `band_margin` points of a grade-band boundary.

Once a human has reviewed the conversation, everything but open disputes counts for
`reviewed_factor` of its weight: the machine's doubts have had their human answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from grader.codebook import BEHAVIOR_NAMES_ZH
from grader.rubric.schema import Condition, Rubric
from grader.types import Grade, TurnBehaviors

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class BehaviorCondition:
    """A behavior that an item or red line reads, on the agent turns of its scope."""

    behavior: str
    min_prob: float | None = None
    first: int | None = None
    last: int | None = None

    def turns(self, agent_turns: list[TurnBehaviors]) -> list[TurnBehaviors]:
        """The agent turns in scope (`first`/`last` N agent turns; `near` scopes count as all)."""
        if self.first is not None:
            return agent_turns[: self.first]
        if self.last is not None:
            return agent_turns[-self.last:]
        return agent_turns


@dataclass(frozen=True)
class Watch:
    """What triage compares a grade with: decision thresholds, the behavior conditions of each
    item and of each red line (with its label), and the band boundaries (label, min), highest
    first."""

    thresholds: Mapping[str, float]
    items: Mapping[str, tuple[BehaviorCondition, ...]] = field(default_factory=dict)
    red_lines: Mapping[str, tuple[str, tuple[BehaviorCondition, ...]]] = field(default_factory=dict)
    bands: tuple[tuple[str, float], ...] = ()

    def threshold(self, condition: BehaviorCondition) -> float:
        if condition.min_prob is not None:
            return condition.min_prob
        return self.thresholds.get(condition.behavior, DEFAULT_THRESHOLD)


def _behavior_conditions(condition: Condition | None) -> tuple[BehaviorCondition, ...]:
    out = []
    for c in condition.walk() if condition is not None else ():
        scope = c.scope
        # A behavior condition scoped to customer or system turns never sees a behavior.
        if c.behavior is not None and (scope is None or scope.speaker in ("agent", "any")):
            out.append(BehaviorCondition(c.behavior, c.min_prob, scope.first if scope else None,
                                         scope.last if scope else None))
    return tuple(out)


def watch_for(rubric: Rubric, thresholds: Mapping[str, float]) -> Watch:
    """The watch list of a rubric graded by a tagger with these decision thresholds."""
    items = {it.id: _behavior_conditions(it.when) for dim in rubric.dimensions for it in dim.items}
    red_lines = {rl.id: (rl.label, _behavior_conditions(rl.when)) for rl in rubric.red_lines}
    return Watch(thresholds=dict(thresholds), items={k: v for k, v in items.items() if v},
                 red_lines={k: v for k, v in red_lines.items() if v[1]},
                 bands=tuple((b.label, b.min) for b in rubric.grade_bands))


@dataclass(frozen=True)
class Weights:
    """Weights of the reasons and the margins that make a value 'near'."""

    red_line: float = 100.0
    dispute: float = 80.0
    extra_dispute: float = 10.0
    fragile_red_line: float = 30.0
    fragile_item: float = 10.0
    fragile_cap: float = 40.0
    uncertain: float = 4.0
    uncertain_cap: float = 16.0
    near_band: float = 20.0
    prob_margin: float = 0.15
    band_margin: float = 3.0
    reviewed_factor: float = 0.25


@dataclass(frozen=True)
class Doubt:
    """A behavior probability near its threshold on one agent turn."""

    turn: int
    behavior: str
    prob: float
    threshold: float

    def describe(self) -> str:
        name = BEHAVIOR_NAMES_ZH.get(self.behavior, self.behavior)
        return f"第{self.turn}轮「{name}」{self.prob:.2f}（阈值 {self.threshold:.2f}）"


@dataclass(frozen=True)
class Reason:
    """Why a conversation is in the queue: a code, a short Chinese label, details, a weight."""

    code: str
    label: str
    detail: str
    weight: float


@dataclass(frozen=True)
class Triage:
    priority: float
    reasons: tuple[Reason, ...]


def doubts(grade: Grade, watch: Watch, margin: float) -> list[Doubt]:
    """Every (agent turn, behavior) whose probability lies within `margin` of its threshold."""
    out = []
    for turn in grade.turns:
        for behavior, prob in turn.scores.items():
            threshold = watch.thresholds.get(behavior, DEFAULT_THRESHOLD)
            if abs(prob - threshold) <= margin:
                out.append(Doubt(turn.index, behavior, prob, threshold))
    return out


def _closest(grade: Grade, watch: Watch, conditions: Iterable[BehaviorCondition], margin: float) -> Doubt | None:
    closest = None
    for cond in conditions:
        threshold = watch.threshold(cond)
        for turn in cond.turns(grade.turns):
            prob = turn.scores.get(cond.behavior, 0.0)
            distance = abs(prob - threshold)
            if distance <= margin and (closest is None or distance < abs(closest.prob - closest.threshold)):
                closest = Doubt(turn.index, cond.behavior, prob, threshold)
    return closest


def fragile(grade: Grade, watch: Watch, margin: float) -> dict[tuple[str, str], tuple[str, Doubt]]:
    """Applicable items and red lines (fired or not) whose behavior conditions have, on a turn
    in scope, a probability within `margin` of its threshold: by ("item" | "red_line", id),
    the label and the closest such doubt."""
    out: dict[tuple[str, str], tuple[str, Doubt]] = {}
    for item in grade.items:
        doubt = _closest(grade, watch, watch.items.get(item.id, ()), margin) if item.applicable else None
        if doubt is not None:
            out[("item", item.id)] = (item.label, doubt)
    for ref, (label, conditions) in watch.red_lines.items():
        doubt = _closest(grade, watch, conditions, margin)
        if doubt is not None:
            out[("red_line", ref)] = (label, doubt)
    return out


def near_band(score: float, bands: Iterable[tuple[str, float]], margin: float) -> tuple[str, float, float] | None:
    """(band label, its minimum, score - minimum) of the closest boundary within `margin`
    points of the score; the bottom band's 0 is no boundary."""
    near = [(label, low, round(score - low, 2)) for label, low in bands if low > 0 and abs(score - low) <= margin]
    return min(near, key=lambda b: abs(b[2])) if near else None


def _short(label: str) -> str:
    """A label without its parenthetical (泄露客户个人信息（完整手机号…） -> 泄露客户个人信息)."""
    return label.split("（")[0].split("(")[0].strip() or label


def _fragile_reasons(grade: Grade, watch: Watch, w: Weights) -> tuple[list[Reason], set[tuple[int, str]]]:
    reasons, budget, involved = [], w.fragile_cap, set()
    for (kind, _), (label, doubt) in fragile(grade, watch, w.prob_margin).items():
        weight = min(budget, w.fragile_item if kind == "item" else w.fragile_red_line)
        budget -= weight
        prefix = "评分项临界" if kind == "item" else "红线临界"
        reasons.append(Reason("fragile", f"{prefix}：{_short(label)}", f"{label}：{doubt.describe()}", weight))
        involved.add((doubt.turn, doubt.behavior))
    return reasons, involved


def _band_reason(grade: Grade, watch: Watch, w: Weights) -> Reason | None:
    band = None if grade.red_line else near_band(grade.score, watch.bands, w.band_margin)
    if band is None:
        return None
    label, low, diff = band
    where = f"距「{label}」线差 {-diff:g} 分" if diff < 0 else f"高出「{label}」线 {diff:g} 分"
    closeness = 1 - abs(diff) / w.band_margin if w.band_margin else 1.0
    return Reason("near_band", f"临近等级线：{where}", f"{grade.score:g} 分，「{label}」线 {low:g} 分",
                  round(w.near_band * (0.5 + 0.5 * closeness), 1))


def _machine_reasons(grade: Grade, watch: Watch, w: Weights) -> list[Reason]:
    reasons = [Reason("red_line", f"红线：{_short(rl.label)}", f"{rl.label}：{rl.reason}", w.red_line)
               for rl in grade.red_lines]
    flips, involved = _fragile_reasons(grade, watch, w)
    reasons += flips
    others = [d for d in doubts(grade, watch, w.prob_margin) if (d.turn, d.behavior) not in involved]
    if others:
        detail = "；".join(d.describe() for d in others[:4]) + ("……" if len(others) > 4 else "")
        reasons.append(Reason("uncertain", f"低置信度：{len(others)} 处行为概率接近阈值", detail,
                              min(w.uncertain_cap, w.uncertain * len(others))))
    band = _band_reason(grade, watch, w)
    return reasons + ([band] if band is not None else [])


def triage(grade: Grade, watch: Watch, *, open_disputes: int = 0, reviewed: bool = False,
           weights: Weights = Weights()) -> Triage:
    """Priority and reasons of one (effective) grade; see the module docstring."""
    reasons = []
    if open_disputes:
        label = "待处理申诉" + (f" ×{open_disputes}" if open_disputes > 1 else "")
        reasons.append(Reason("dispute", label, "客服对评分项提出了申诉，等待处理",
                              weights.dispute + weights.extra_dispute * (open_disputes - 1)))
    factor = weights.reviewed_factor if reviewed else 1.0
    for reason in _machine_reasons(grade, watch, weights):
        reasons.append(Reason(reason.code, reason.label, reason.detail, round(reason.weight * factor, 2)))
    return Triage(round(sum(r.weight for r in reasons), 1), tuple(reasons))
