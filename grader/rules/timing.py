"""Timing rules over turns with start/end: response time, silence, overlap, talk ratio, speech rate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from grader.features.timing import agent_replies, gaps, overlaps, speech_rate, talk_time
from grader.features.transcript import TranscriptFeatures
from grader.rules.base import ConfiguredRule, CheckSkipped, RuleConfig
from grader.types import Evidence, Finding

Metric = Literal["first_response", "reply_latency", "silence", "overlap", "talk_ratio", "speech_rate"]


class TimingConfig(RuleConfig):
    """`type: timing`: fire when `metric` exceeds `max` (or falls below `min`).

    first_response / reply_latency: seconds from the customer's turn end to the agent's start;
    silence: seconds between consecutive turns; overlap: seconds the agent starts before the
    customer ends (calls); talk_ratio: agent talk time / customer talk time; speech_rate:
    agent characters per second.
    """

    type: Literal["timing"]
    metric: Metric
    max: float | None = Field(default=None, ge=0)
    min: float | None = Field(default=None, ge=0)
    channels: list[str] | None = None

    @model_validator(mode="after")
    def _bound(self) -> "TimingConfig":
        if self.max is None and self.min is None:
            raise ValueError("give `max` or `min`")
        return self


def _ev(features: TranscriptFeatures, turn: int) -> Evidence:
    return Evidence(turn=turn, text=features.transcript.turns[turn].text[:80])


class TimingRule(ConfiguredRule):
    """The `timing.v1` check."""

    name = "timing.v1"

    def _outside(self, value: float) -> bool:
        c = self.config
        return (c.max is not None and value > c.max) or (c.min is not None and value < c.min)

    def _finding(self, turns: list[int], features: TranscriptFeatures, explanation: str, value: float) -> Finding:
        return Finding(check=self.name, rule_id=self.id, source="rule", evidence=[_ev(features, t) for t in turns],
                       explanation=explanation, details={"metric": self.config.metric, "value": round(value, 2)})

    def run(self, features: TranscriptFeatures) -> list[Finding]:
        t = features.transcript
        if self.config.channels and (t.channel or "") not in self.config.channels:
            raise CheckSkipped(f"{self.id}: 仅适用于渠道 {self.config.channels}")
        if not t.timed:
            raise CheckSkipped(f"{self.id}: 对话缺少时间戳（start/end），已跳过时间类规则")
        metric, label = self.config.metric, self.config.label or self.id
        if metric in ("first_response", "reply_latency"):
            replies = agent_replies(t)
            if metric == "first_response":
                replies = replies[:1]
            return [self._finding([c, a], features, f"{label}：客户说完后{lat:.1f}秒才响应", lat)
                    for c, a, lat in replies if self._outside(lat)]
        if metric == "silence":
            return [self._finding([a, b], features, f"{label}：第{a}轮与第{b}轮之间静默{g:.1f}秒", g)
                    for a, b, g in gaps(t) if self._outside(g)]
        if metric == "overlap":
            return [self._finding([c, a], features, f"{label}：客服在客户说完前{o:.1f}秒插话", o)
                    for c, a, o in overlaps(t) if self._outside(o)]
        if metric == "talk_ratio":
            agent, customer = talk_time(t, "agent"), talk_time(t, "customer")
            if customer <= 0:
                raise CheckSkipped(f"{self.id}: 客户无发言时长，无法计算说话占比")
            ratio = agent / customer
            turns = features.agent_turns[:1]
            return [self._finding(turns, features, f"{label}：客服/客户说话时长比为{ratio:.2f}", ratio)] if self._outside(ratio) else []
        rate_turns = [(i, r) for i, r in speech_rate(t) if self._outside(r)]
        return [self._finding([i], features, f"{label}：语速{r:.1f}字/秒", r) for i, r in rate_turns]
