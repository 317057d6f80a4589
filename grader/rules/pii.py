"""Personal-data leakage: the agent writes or reads out a full personal number."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from grader.features.pii import find_personal_numbers
from grader.features.transcript import TranscriptFeatures
from grader.rules.base import ConfiguredRule, RuleConfig, Scope
from grader.types import Evidence, Finding

PiiKind = Literal["mobile", "id_card", "bank_card", "email"]
_KIND_ZH = {"mobile": "手机号", "id_card": "身份证号", "bank_card": "银行卡号", "email": "电子邮箱"}
# Card numbers need a card-like prefix or a word about cards nearby: order numbers also pass Luhn one time in ten.
_CARD_IIN = re.compile(r"^(62|4|5[1-5]|3[47]|35|60|9)")
_CARD_CONTEXT = re.compile(r"卡|card|账号|帐号", re.IGNORECASE)


class PiiConfig(RuleConfig):
    """`type: pii`: full personal numbers in the scoped turns (default: the agent's)."""

    type: Literal["pii"]
    scope: Scope = Scope()
    kinds: list[PiiKind] = Field(default_factory=lambda: ["mobile", "id_card", "bank_card"], min_length=1)


class PiiRule(ConfiguredRule):
    """The `pii.v1` check: evidence carries the masked number only."""

    name = "pii.v1"

    def __init__(self, config: PiiConfig, base_dir=None):
        super().__init__(config, base_dir)
        self.kinds = frozenset(config.kinds)

    def _plausible(self, kind: str, text: str, start: int, end: int) -> bool:
        if kind != "bank_card":
            return True
        digits = re.sub(r"\D", "", text[start:end])
        return len(digits) >= 16 and (bool(_CARD_IIN.match(digits)) or bool(_CARD_CONTEXT.search(text)))

    def run(self, features: TranscriptFeatures) -> list[Finding]:
        findings = []
        for i in self.config.scope.turns(features):
            text = features.transcript.turns[i].text
            for p in find_personal_numbers(text, self.kinds):
                if not self._plausible(p.kind, text, p.start, p.end):
                    continue
                snippet = text[max(0, p.start - 8) : p.end + 8]
                findings.append(Finding(
                    check=self.name, rule_id=self.id, source="rule",
                    evidence=[Evidence(turn=i, start=p.start, end=p.end, text=snippet)],
                    explanation=f"客服完整透露了客户的{_KIND_ZH[p.kind]}（{p.masked}）",
                    details={"kind": p.kind, "masked": p.masked},
                ))
        return findings
