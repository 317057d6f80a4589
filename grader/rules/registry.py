"""Rule families by YAML `type`, and building checks from validated configs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Union

from pydantic import Field

from grader.rules.keyword import KeywordConfig, KeywordRule
from grader.rules.pii import PiiConfig, PiiRule
from grader.rules.repetition import RepetitionConfig, RepetitionRule
from grader.rules.sequence import SequenceConfig, SequenceRule
from grader.rules.timing import TimingConfig, TimingRule

AnyRuleConfig = Annotated[
    Union[KeywordConfig, PiiConfig, TimingConfig, RepetitionConfig, SequenceConfig],
    Field(discriminator="type"),
]

RULE_FAMILIES = {
    "keyword": KeywordRule,
    "pii": PiiRule,
    "timing": TimingRule,
    "repetition": RepetitionRule,
    "sequence": SequenceRule,
}


def build_rule(config, base_dir: Path | None = None):
    """The check for one validated rule config."""
    return RULE_FAMILIES[config.type](config, base_dir=base_dir)
