"""The rubric YAML schema: rules, dimensions with weighted items, red lines and grade bands."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from grader.codebook import BEHAVIORS
from grader.rules.base import Scope
from grader.rules.registry import AnyRuleConfig

_ID = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(_Strict):
    """Exactly one of: a behavior in scope, a rule's hit, a quality dimension's expected value,
    or `all` / `any` / `not` over conditions."""

    behavior: str | None = None
    scope: Scope | None = None
    min_prob: float | None = Field(default=None, ge=0, le=1)
    min_count: int = Field(default=1, ge=1)
    rule: str | None = None
    quality: str | None = None
    below: float | None = None
    above: float | None = None
    all_: list["Condition"] | None = Field(default=None, alias="all")
    any_: list["Condition"] | None = Field(default=None, alias="any")
    not_: "Condition | None" = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Condition":
        heads = [k for k in ("behavior", "rule", "quality", "all_", "any_", "not_") if getattr(self, k) is not None]
        if len(heads) != 1:
            raise ValueError("a condition needs exactly one of behavior, rule, quality, all, any, not")
        if self.behavior is not None and self.behavior not in BEHAVIORS:
            raise ValueError(f"unknown behavior id {self.behavior!r}; the codebook has {', '.join(BEHAVIORS)}")
        if self.quality is not None and self.below is None and self.above is None:
            raise ValueError("a quality condition needs `below` or `above`")
        if self.scope is not None and self.behavior is None:
            raise ValueError("`scope` applies to behavior conditions only")
        return self

    def walk(self):
        """This condition and every nested one."""
        yield self
        for child in (self.all_ or []) + (self.any_ or []) + ([self.not_] if self.not_ else []):
            yield from child.walk()

    def source(self) -> str:
        """`rule`, `model`, or `condition` where both kinds are involved."""
        kinds = {"rule" if c.rule else "model" for c in self.walk() if c.rule or c.behavior or c.quality}
        return kinds.pop() if len(kinds) == 1 else "condition"


class Item(_Strict):
    """A scored item. required/bonus: earn `points` when `when` holds; deduction: lose them
    (or `per_hit` per hit) when it holds. Items whose `applies_if` is false are not applicable."""

    id: str = Field(pattern=_ID)
    label: str
    kind: Literal["required", "bonus", "deduction"] = "required"
    points: float = Field(gt=0)
    when: Condition
    applies_if: Condition | None = None
    per_hit: float | None = Field(default=None, gt=0)
    source: Literal["rule", "model", "condition"] | None = None
    description: str = ""

    def result_source(self) -> str:
        """`source` as declared, else derived from what `when` reads."""
        return self.source or self.when.source()

    @model_validator(mode="after")
    def _per_hit_only_for_deductions(self) -> "Item":
        if self.per_hit is not None and self.kind != "deduction":
            raise ValueError("`per_hit` applies to deduction items only")
        return self


class Dimension(_Strict):
    id: str = Field(pattern=_ID)
    label: str
    weight: float = Field(gt=0)
    items: list[Item] = Field(min_length=1)


class RedLine(_Strict):
    id: str = Field(pattern=_ID)
    label: str
    when: Condition
    consequence: Literal["fail", "flag"] = "fail"


class GradeBand(_Strict):
    label: str
    min: float = Field(ge=0, le=100)


class Rubric(_Strict):
    """A whole rubric file."""

    id: str = Field(pattern=_ID)
    version: str
    name: str
    description: str = ""
    rules: list[AnyRuleConfig] = Field(default_factory=list)
    dimensions: list[Dimension] = Field(min_length=1)
    red_lines: list[RedLine] = Field(default_factory=list)
    grade_bands: list[GradeBand] = Field(min_length=1)
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _consistent(self) -> "Rubric":
        _unique("rules", [r.id for r in self.rules])
        _unique("dimensions", [d.id for d in self.dimensions])
        _unique("items", [i.id for d in self.dimensions for i in d.items])
        _unique("red_lines", [r.id for r in self.red_lines])
        self._check_rule_order()
        self._check_references()
        mins = [b.min for b in self.grade_bands]
        if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins) or mins[-1] != 0:
            raise ValueError("grade_bands: list bands from the highest `min` down, distinct, the last with min 0")
        return self

    def _check_rule_order(self) -> None:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            needs = [getattr(getattr(rule, "scope", None), "near", None), getattr(rule, "trigger", None)]
            for need in needs:
                ref = getattr(need, "rule", None) if need is not None else None
                if ref is not None and ref not in seen:
                    raise ValueError(f"rules.{i} ({rule.id}): refers to rule {ref!r}, which must be defined before it")
            seen.add(rule.id)

    def _check_references(self) -> None:
        known = {r.id for r in self.rules}
        places = [(f"dimensions.{d}.items.{j}", it.when, it.applies_if) for d, dim in enumerate(self.dimensions) for j, it in enumerate(dim.items)]
        places += [(f"red_lines.{k}", rl.when, None) for k, rl in enumerate(self.red_lines)]
        for where, *conds in places:
            for cond in filter(None, conds):
                for c in cond.walk():
                    if c.rule is not None and c.rule not in known:
                        raise ValueError(f"{where}: unknown rule {c.rule!r}; define it under `rules`")

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def band(self, score: float) -> str:
        """The grade band label for a 0-100 score."""
        return next(b.label for b in self.grade_bands if score >= b.min)


def _unique(where: str, ids: list[str]) -> None:
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{where}: duplicate id(s) {dupes}")


class RubricError(ValueError):
    """A rubric file that cannot be read or validated; the message names file and field."""


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid rubric"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {loc or '(top level)'}: {err['msg']}")
    return "\n".join(lines)


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric YAML file; raise RubricError naming the field at fault."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RubricError(f"{path}: cannot read rubric: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RubricError(f"{path}: a rubric is a YAML mapping at the top level")
    try:
        rubric = Rubric.model_validate(data)
    except ValidationError as exc:
        raise RubricError(_format_errors(path, exc)) from exc
    rubric._base_dir = path.resolve().parent
    return rubric


def default_rubric_path() -> Path:
    """The shipped rubric, found relative to the package (not the working directory)."""
    return Path(__file__).resolve().parents[2] / "rubrics" / "default.yaml"
