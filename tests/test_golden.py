"""Golden tests over the example transcripts (lexicon tagger, shipped rubric).

Regenerate after an intended change with `UPDATE_GOLDEN=1 pytest tests/test_golden.py`
and review the diff of tests/fixtures/golden/.
"""

import json
import os
from pathlib import Path

import pytest

from grader.readers import read_files
from grader.types import Grade
from tests.conftest import EXAMPLES

GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "examples_lexicon.jsonl"


def summarise(g: Grade) -> dict:
    return {"id": g.id, "score": g.score, "grade": g.grade, "red_lines": [r.id for r in g.red_lines],
            "failed": sorted(i.id for i in g.items if i.applicable and not i.passed),
            "behaviors": {str(t.index): t.behaviors for t in g.turns}}


@pytest.fixture(scope="module")
def graded(lexicon_grader):
    return [r for r in lexicon_grader.grade_stream(read_files([EXAMPLES, EXAMPLES.with_suffix(".csv")]))]


def test_examples_match_golden(graded):
    current = [summarise(g) for g in graded]
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in current), encoding="utf-8")
    expected = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert current == expected


def test_red_line_examples(graded):
    by_id = {g.id: g for g in graded}
    for conv, red in [("ex-ecommerce-05", "pii_leak"), ("ex-travel-03", "pii_leak"), ("ex-bank-02", "pii_leak"),
                      ("ex-ecommerce-04", "impolite"), ("ex-ecommerce-07", "shirking")]:
        g = by_id[conv]
        assert red in [r.id for r in g.red_lines] and g.score == 0 and g.grade == "待改进", conv
    dump = json.dumps([g.model_dump() for g in graded], ensure_ascii=False)
    for number in ("13958762431", "420106195806120314", "6217001234567893"):
        assert number not in dump


def test_exemplary_examples_score_high(graded):
    by_id = {g.id: g for g in graded}
    for conv in ("ex-telecom-01", "ex-bank-01", "ex-insurance-01"):
        assert by_id[conv].score >= 80 and not by_id[conv].red_line, conv


def test_timing_examples_hit_their_rules(graded):
    by_id = {g.id: g for g in graded}
    failed = {gid: {i.id for i in g.items if not i.passed} for gid, g in by_id.items()}
    assert "no_dead_air" in failed["ex-telecom-02"]
    assert "first_response_time" in failed["ex-bank-03"]
    assert "no_interruption" in failed["ex-telecom-04"]
    assert "balanced_talk" in failed["ex-bank-05"]
    assert "no_canned_repetition" in failed["ex-ecommerce-03"]
    untimed_chat = by_id["ex-ecommerce-01"]
    assert any("时间戳" in n for n in untimed_chat.notes)
    assert not [i for i in untimed_chat.items if i.id == "first_response_time" and i.applicable]
