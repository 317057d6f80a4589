"""Evaluation of rubric conditions over behaviors, rule hits and quality predictions."""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.codebook import BEHAVIOR_NAMES_ZH
from grader.features.transcript import TranscriptFeatures
from grader.rubric.schema import Condition
from grader.rules.base import Scope
from grader.types import Evidence, Finding

_AGENT_SCOPE = Scope()


@dataclass
class Context:
    """What conditions read: features (with behaviors), findings per rule, skipped rules."""

    features: TranscriptFeatures
    findings: dict[str, list[Finding]]
    skipped: dict[str, str] = field(default_factory=dict)
    rule_labels: dict[str, str] = field(default_factory=dict)

    def rule_name(self, rule_id: str) -> str:
        label = self.rule_labels.get(rule_id)
        return f"「{label}」" if label else rule_id


@dataclass
class Outcome:
    """value is None when it cannot be known (a skipped rule, no quality model)."""

    value: bool | None
    evidence: list[Evidence]
    reason: str
    hits: int = 0


def _turn_evidence(features: TranscriptFeatures, turns: list[int]) -> list[Evidence]:
    return [Evidence(turn=i, text=features.transcript.turns[i].text[:120]) for i in turns]


def _behavior(cond: Condition, ctx: Context) -> Outcome:
    f = ctx.features
    scope = cond.scope or _AGENT_SCOPE
    turns = scope.turns(f)
    hits = [i for i in turns if f.has_behavior(i, cond.behavior, cond.min_prob)]
    name = f"「{BEHAVIOR_NAMES_ZH[cond.behavior]}」({cond.behavior})"
    if len(hits) >= cond.min_count:
        probs = "，".join(f"第{i}轮 {f.behaviors.get(i, {}).get(cond.behavior, 0):.2f}" for i in hits[:3])
        return Outcome(True, _turn_evidence(f, hits), f"{scope.describe()}出现{name}：{probs}", len(hits))
    if not turns:
        return Outcome(False, [], f"{scope.describe()}为空，未出现{name}")
    return Outcome(False, _turn_evidence(f, turns[-2:]), f"{scope.describe()}未出现{name}", len(hits))


def _rule(cond: Condition, ctx: Context) -> Outcome:
    if cond.rule in ctx.skipped:
        return Outcome(None, [], f"规则{ctx.rule_name(cond.rule)}已跳过：{ctx.skipped[cond.rule]}")
    found = ctx.findings.get(cond.rule, [])
    if found:
        evidence = [e for fd in found for e in fd.evidence]
        return Outcome(True, evidence, "；".join(fd.explanation for fd in found[:3]), len(found))
    return Outcome(False, [], f"未发现{ctx.rule_name(cond.rule)}")


def _quality(cond: Condition, ctx: Context) -> Outcome:
    q = (ctx.features.quality or {}).get(cond.quality)
    if q is None:
        return Outcome(None, [], f"未配置质量维度 {cond.quality} 的模型")
    value = q["expected"]
    ok = (cond.below is None or value < cond.below) and (cond.above is None or value > cond.above)
    return Outcome(ok, [], f"质量维度 {cond.quality} 预测期望值 {value:.2f}")


def _combine(children: list[Outcome], want_all: bool) -> Outcome:
    values = [c.value for c in children]
    decisive = False if want_all else True
    if decisive in values:
        value = decisive
    elif None in values:
        value = None
    else:
        value = not decisive
    relevant = [c for c in children if c.value == value] or children
    evidence = dedupe([e for c in relevant for e in c.evidence])
    return Outcome(value, evidence, "；".join(c.reason for c in relevant), sum(c.hits for c in relevant))


def dedupe(evidence: list[Evidence]) -> list[Evidence]:
    """Evidence without repeats, in order."""
    seen, out = set(), []
    for e in evidence:
        key = (e.turn, e.start, e.end)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def evaluate(cond: Condition, ctx: Context) -> Outcome:
    """Evaluate one condition."""
    if cond.behavior is not None:
        return _behavior(cond, ctx)
    if cond.rule is not None:
        return _rule(cond, ctx)
    if cond.quality is not None:
        return _quality(cond, ctx)
    if cond.not_ is not None:
        inner = evaluate(cond.not_, ctx)
        value = None if inner.value is None else not inner.value
        return Outcome(value, inner.evidence, f"非（{inner.reason}）", inner.hits)
    children = [evaluate(c, ctx) for c in (cond.all_ or cond.any_)]
    return _combine(children, want_all=cond.all_ is not None)
