"""The rubric sandbox: pass/fail/n.a. rates of each item on sample conversations."""

from __future__ import annotations

from collections import Counter
from typing import Any

from grader.rubric.schema import Rubric
from grader.types import ErrorRecord, Grade


def rubric_report(rubric: Rubric, results: list[Grade | ErrorRecord], examples: int = 3) -> dict[str, Any]:
    """Per item: passed, failed, not applicable, mean points and example evidence; red-line counts."""
    grades = [r for r in results if isinstance(r, Grade)]
    rows = []
    for dim in rubric.dimensions:
        for item in dim.items:
            got = [i for g in grades for i in g.items if i.id == item.id]
            pairs = [(g, i) for g in grades for i in g.items if i.id == item.id]
            failing = [(g, i) for g, i in pairs if i.applicable and not i.passed and i.evidence]
            shown = failing or [(g, i) for g, i in pairs if i.evidence]
            rows.append({
                "id": item.id, "label": item.label, "dimension": dim.id, "kind": item.kind,
                "passed": sum(1 for i in got if i.applicable and i.passed),
                "failed": sum(1 for i in got if i.applicable and not i.passed),
                "not_applicable": sum(1 for i in got if not i.applicable),
                "mean_points": sum(i.points for i in got if i.applicable) / max(1, sum(1 for i in got if i.applicable)),
                "max_points": item.points,
                "examples": [{"id": g.id, "turn": i.evidence[0].turn, "text": i.evidence[0].text, "reason": i.reason}
                             for g, i in shown[:examples]],
            })
    reds = Counter(r.id for g in grades for r in g.red_lines)
    return {
        "rubric": {"id": rubric.id, "version": rubric.version},
        "conversations": len(results),
        "errors": len(results) - len(grades),
        "mean_score": sum(g.score for g in grades) / len(grades) if grades else 0.0,
        "grades": dict(Counter(g.grade for g in grades)),
        "items": rows,
        "red_lines": [{"id": rl.id, "label": rl.label, "count": reds.get(rl.id, 0)} for rl in rubric.red_lines],
    }
