"""The pure function that applies reviews to a machine grade (grader/review.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from conftest import EXAMPLES
from grader.readers import parse_transcript
from grader.review import (REVIEWER_RED_LINE, ItemOverride, ReviewError, ReviewInput, TurnOverride, dispute_review,
                           effective_grade, validate_review)


@pytest.fixture(scope="module")
def grades(lexicon_grader):
    transcripts = [parse_transcript(json.loads(line)) for line in EXAMPLES.read_text(encoding="utf-8").splitlines()]
    return {g.id: g for g in lexicon_grader.grade_batch(transcripts)}


def item(grade, item_id):
    return next(i for i in grade.items if i.id == item_id)


def review(reason="复核", **kw):
    return ReviewInput(reason=reason, **kw)


def test_without_reviews_the_machine_grade_is_returned(grades, rubric):
    machine = grades["ex-ecommerce-01"]
    assert effective_grade(machine, [], rubric) is machine


def test_a_confirming_review_changes_nothing_on_any_example(grades, rubric):
    for machine in grades.values():
        eff = effective_grade(machine, [review("确认机器评分")], rubric)
        assert eff == machine, machine.id


def test_restating_every_item_recomputes_exactly_the_machine_score(grades, rubric):
    # Overriding each item with its own machine result forces the recomputation path: it must
    # land on the machine's dimensions, score and band (scoring.py's formula).
    for machine in grades.values():
        if machine.red_line:
            continue
        same = [ItemOverride(id=i.id, passed=i.passed, points=i.points) for i in machine.items if i.applicable]
        eff = effective_grade(machine, [review(items=same)], rubric)
        assert (eff.score, eff.grade, eff.dimensions) == (machine.score, machine.grade, machine.dimensions), machine.id


def test_failing_a_required_item_loses_its_points_and_reweights_the_dimension(grades, rubric):
    machine = grades["ex-ecommerce-01"]  # 100.0: every item passed
    eff = effective_grade(machine, [review("未道别", items=[ItemOverride(id="polite_closing", passed=False)])], rubric)
    closing = item(eff, "polite_closing")
    assert (closing.passed, closing.points, closing.max_points) == (False, 0.0, 3)
    assert "人工复核改判：未道别" in closing.reason
    norms = next(d for d in eff.dimensions if d.id == "service_norms")
    assert (norms.points, norms.max_points, norms.score) == (12.0, 15.0, 12.0)
    assert eff.score == 97.0 and eff.grade == "优秀"
    assert machine.score == 100.0 and item(machine, "polite_closing").passed  # never edited


def test_points_override_grants_part_of_an_item(grades, rubric):
    machine = grades["ex-ecommerce-02"]  # polite_closing failed by the machine
    eff = effective_grade(machine, [review(items=[ItemOverride(id="polite_closing", points=1.5)])], rubric)
    closing = item(eff, "polite_closing")
    assert (closing.points, closing.passed) == (1.5, False)
    assert eff.score > machine.score


def test_failing_a_deduction_item_deducts_one_hit_or_keeps_the_machines_deduction(grades, rubric):
    clean = grades["ex-ecommerce-01"]
    eff = effective_grade(clean, [review(items=[ItemOverride(id="reply_latency", passed=False)])], rubric)
    latency = item(eff, "reply_latency")  # 4 points, 2 per hit
    assert (latency.passed, latency.points, latency.applicable) == (False, 2.0, True)
    whole = effective_grade(clean, [review(items=[ItemOverride(id="courteous_language", passed=False)])], rubric)
    assert item(whole, "courteous_language").points == 0.0  # no per_hit: the whole item
    repeated = grades["ex-ecommerce-03"]  # no_canned_repetition already failed
    again = effective_grade(repeated, [review(items=[ItemOverride(id="no_canned_repetition", passed=False)])], rubric)
    assert item(again, "no_canned_repetition").points == item(repeated, "no_canned_repetition").points


def test_a_bonus_item_adds_points_without_raising_the_maximum(grades, rubric):
    machine = grades["ex-ecommerce-02"]  # warm_reassurance (bonus) not earned
    eff = effective_grade(machine, [review(items=[ItemOverride(id="warm_reassurance", passed=True)])], rubric)
    bonus = item(eff, "warm_reassurance")
    assert (bonus.passed, bonus.points, bonus.max_points) == (True, 3, 0.0)
    assert eff.score >= machine.score


def test_turn_labels_change_labels_only(grades, rubric):
    machine = grades["ex-ecommerce-01"]
    eff = effective_grade(machine, [review(turns=[TurnOverride(index=1, behaviors=["greeting", "greeting"])])], rubric)
    assert next(t for t in eff.turns if t.index == 1).behaviors == ["greeting"]
    assert next(t for t in machine.turns if t.index == 1).behaviors == ["greeting", "empathy", "info_request"]
    assert (eff.score, eff.items) == (machine.score, machine.items)


def test_later_reviews_win(grades, rubric):
    machine = grades["ex-ecommerce-01"]
    first = review("一", items=[ItemOverride(id="polite_closing", passed=False)], score=50)
    second = review("二", items=[ItemOverride(id="polite_closing", passed=True)])
    eff = effective_grade(machine, [first, second], rubric)
    assert item(eff, "polite_closing").passed and "二" in item(eff, "polite_closing").reason
    assert eff.score == 50.0 and eff.grade == "待改进"  # the first review's score still stands


def test_clearing_a_red_line_restores_the_items_score(grades, rubric):
    machine = grades["ex-ecommerce-05"]  # pii_leak red line: score 0
    eff = effective_grade(machine, [review("号码是客户自己报的", red_line=False)], rubric)
    assert (eff.red_line, eff.red_lines) == (False, [])
    assert eff.score > 0 and eff.grade == rubric.band(eff.score)
    assert machine.red_line and machine.score == 0.0


def test_a_reviewer_red_line_fails_the_conversation(grades, rubric):
    machine = grades["ex-ecommerce-01"]
    eff = effective_grade(machine, [review("辱骂客户", red_line=True)], rubric)
    assert eff.red_line and [r.id for r in eff.red_lines] == [REVIEWER_RED_LINE]
    assert (eff.score, eff.grade) == (0.0, rubric.grade_bands[-1].label)


def test_a_score_override_sets_score_and_band_but_not_past_a_red_line(grades, rubric):
    clean = effective_grade(grades["ex-ecommerce-02"], [review(score=93.25)], rubric)
    assert (clean.score, clean.grade) == (93.2, "优秀")
    vetoed = effective_grade(grades["ex-ecommerce-04"], [review(score=90)], rubric)
    assert vetoed.score == 0.0 and any("一票否决" in n for n in vetoed.notes)


def test_overrides_that_no_longer_fit_are_skipped_with_a_note(grades, rubric):
    machine = grades["ex-ecommerce-01"]
    stale = review(items=[ItemOverride(id="retired_item", passed=False)], turns=[TurnOverride(index=0, behaviors=[])])
    eff = effective_grade(machine, [stale], rubric)
    assert eff.score == machine.score and len(eff.notes) == len(machine.notes) + 2


@pytest.mark.parametrize("decision,points,expected", [("accepted", None, (True, 3)), ("partial", 1.0, (False, 1.0)),
                                                       ("partial", 3.0, (True, 3.0))])
def test_accepted_disputes_become_item_overrides(grades, rubric, decision, points, expected):
    machine = grades["ex-ecommerce-02"]
    resolution = dispute_review("polite_closing", decision, "客户确认已道别", points, rubric)
    assert resolution.source == "dispute"
    closing = item(effective_grade(machine, [resolution], rubric), "polite_closing")
    assert (closing.passed, closing.points) == expected


def test_rejected_disputes_change_nothing_and_partial_needs_points(rubric):
    assert dispute_review("polite_closing", "rejected", "维持", None, rubric) is None
    with pytest.raises(ReviewError) as err:
        dispute_review("polite_closing", "partial", "部分", None, rubric)
    assert err.value.field == "points"
    with pytest.raises(ReviewError) as err:
        dispute_review("polite_closing", "partial", "部分", 4, rubric)
    assert err.value.field == "points"


@pytest.mark.parametrize("body,field", [
    ({"items": [{"id": "nope", "passed": True}]}, "items.0.id"),
    ({"items": [{"id": "greeting", "passed": True}, {"id": "greeting", "points": 1}]}, "items.1.id"),
    ({"items": [{"id": "greeting"}]}, "items.0"),
    ({"items": [{"id": "greeting", "points": 3.5}]}, "items.0.points"),
    ({"turns": [{"index": 0, "behaviors": ["greeting"]}]}, "turns.0.index"),
    ({"turns": [{"index": 1, "behaviors": []}, {"index": 1, "behaviors": ["empathy"]}]}, "turns.1.index"),
])
def test_reviews_that_do_not_fit_name_the_field(grades, rubric, body, field):
    with pytest.raises(ReviewError) as err:
        validate_review(ReviewInput(reason="x", **body), grades["ex-ecommerce-01"], rubric)
    assert err.value.field == field and field in str(err.value)


@pytest.mark.parametrize("body", [{"reason": "  "}, {"reason": "x", "score": 101},
                                  {"reason": "x", "turns": [{"index": 1, "behaviors": ["smiling"]}]},
                                  {"reason": "x", "items": [{"id": "greeting", "points": -1}]},
                                  {"reason": "x", "extra": 1}])
def test_review_inputs_are_validated(body):
    with pytest.raises(ValidationError):
        ReviewInput.model_validate(body)


def test_the_module_is_pure():
    code = ("import sys, grader.review; bad = {'fastapi', 'sqlalchemy', 'torch', 'starlette'} & set(sys.modules); "
            "print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
