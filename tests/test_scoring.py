"""The scorer: a pure function from findings, behaviors and a rubric to a grade."""

import pytest
import yaml

from grader.features.transcript import TranscriptFeatures
from grader.rubric.schema import Rubric
from grader.scoring import grade_conversation
from grader.types import Evidence, Finding
from tests.conftest import make_transcript

RUBRIC = yaml.safe_load("""
id: t
version: "1"
name: 测试
rules:
  - {id: rude, type: keyword, phrases: [说过很多遍]}
  - {id: slow, type: timing, metric: reply_latency, max: 10}
dimensions:
  - id: norms
    label: 服务规范
    weight: 60
    items:
      - {id: greeting, label: 问候, points: 10, when: {behavior: greeting, scope: {speaker: agent, first: 1}}}
      - {id: closing, label: 道别, points: 10, when: {behavior: closing, scope: {speaker: agent, last: 1}}}
      - {id: survey, label: 邀评, kind: bonus, points: 5, when: {behavior: survey_invite}}
  - id: manner
    label: 态度
    weight: 40
    items:
      - {id: polite, label: 礼貌, kind: deduction, points: 10, per_hit: 4, when: {rule: rude}}
      - {id: fast, label: 及时, kind: deduction, points: 10, when: {rule: slow}}
red_lines:
  - {id: rude_red, label: 不文明, when: {rule: rude}}
grade_bands: [{label: 优秀, min: 90}, {label: 合格, min: 60}, {label: 待改进, min: 0}]
""")


@pytest.fixture
def rubric():
    return Rubric.model_validate(RUBRIC)


T = make_transcript(("customer", "你好"), ("agent", "您好"), ("customer", "怎么退货"), ("agent", "在订单页申请"), ("agent", "再见"))


def features(behaviors):
    return TranscriptFeatures(T, behaviors=behaviors, thresholds={"greeting": 0.5, "closing": 0.5, "survey_invite": 0.5})


def rude_finding(turn=3):
    return Finding(check="keyword.v1", rule_id="rude", source="rule", explanation="不文明",
                   evidence=[Evidence(turn=turn, text="说过很多遍")])


def by_id(grade):
    return {i.id: i for i in grade.items}


def test_full_marks_when_everything_passes(rubric):
    g = grade_conversation(features({1: {"greeting": 0.9}, 3: {}, 4: {"closing": 0.8}}), {"rude": [], "slow": []}, rubric)
    assert (g.score, g.grade, g.red_line) == (100.0, "优秀", False)
    assert by_id(g)["greeting"].evidence[0].turn == 1 and by_id(g)["greeting"].source == "model"


def test_missing_behavior_costs_its_points_with_evidence(rubric):
    g = grade_conversation(features({1: {"greeting": 0.9}, 3: {}, 4: {"closing": 0.2}}), {"rude": [], "slow": []}, rubric)
    closing = by_id(g)["closing"]
    assert (closing.passed, closing.points, closing.max_points) == (False, 0, 10)
    assert [e.turn for e in closing.evidence] == [4] and "礼貌结束" in closing.reason
    assert g.score == pytest.approx(100 * (60 * 10 / 20 + 40) / 100)


def test_bonus_adds_but_never_exceeds_the_dimension(rubric):
    g = grade_conversation(features({1: {"greeting": 0.9}, 4: {"closing": 0.2, "survey_invite": 0.9}}), {"rude": [], "slow": []}, rubric)
    norms = next(d for d in g.dimensions if d.id == "norms")
    assert norms.points == 15 and norms.max_points == 20
    g2 = grade_conversation(features({1: {"greeting": 0.9}, 4: {"closing": 0.9, "survey_invite": 0.9}}), {"rude": [], "slow": []}, rubric)
    assert next(d for d in g2.dimensions if d.id == "norms").points == 20


def test_deduction_per_hit_and_red_line_fails_conversation(rubric):
    g = grade_conversation(features({1: {"greeting": 0.9}, 4: {"closing": 0.9}}), {"rude": [rude_finding(3), rude_finding(4)], "slow": []}, rubric)
    polite = by_id(g)["polite"]
    assert (polite.passed, polite.points) == (False, 2)
    assert g.red_line and g.score == 0 and g.grade == "待改进"
    assert g.red_lines[0].id == "rude_red" and [e.turn for e in g.red_lines[0].evidence] == [3, 4]


def test_skipped_rule_is_not_applicable_and_noted(rubric):
    g = grade_conversation(features({1: {"greeting": 0.9}, 4: {"closing": 0.9}}), {"rude": [], "slow": []}, rubric,
                           skipped={"slow": "无时间戳，已跳过"})
    fast = by_id(g)["fast"]
    assert not fast.applicable and "无时间戳" in fast.reason
    assert g.notes == ["无时间戳，已跳过"]
    manner = next(d for d in g.dimensions if d.id == "manner")
    assert manner.max_points == 10 and g.score == 100


def test_turns_list_every_agent_turn_with_all_behavior_scores(rubric):
    g = grade_conversation(features({1: {"greeting": 0.9}}), {"rude": [], "slow": []}, rubric)
    assert [t.index for t in g.turns] == [1, 3, 4]
    assert len(g.turns[0].scores) == 12 and g.turns[0].behaviors == ["greeting"]


def test_red_line_flag_keeps_score(rubric):
    data = dict(RUBRIC, red_lines=[{"id": "rude_red", "label": "不文明", "when": {"rule": "rude"}, "consequence": "flag"}])
    g = grade_conversation(features({1: {"greeting": 0.9}, 4: {"closing": 0.9}}), {"rude": [rude_finding()], "slow": []},
                           Rubric.model_validate(data))
    assert g.red_line and g.score > 0


def test_quality_condition_not_applicable_without_model():
    data = dict(RUBRIC)
    data["dimensions"] = [{"id": "q", "label": "质量", "weight": 10, "items": [
        {"id": "sat", "label": "满意", "kind": "deduction", "points": 5, "when": {"quality": "S", "below": -0.5}},
        {"id": "g", "label": "问候", "points": 5, "when": {"behavior": "greeting"}}]}]
    rub = Rubric.model_validate(data)
    g = grade_conversation(features({1: {"greeting": 0.9}}), {"rude": [], "slow": []}, rub)
    assert not by_id(g)["sat"].applicable
    f = features({1: {"greeting": 0.9}})
    f.quality = {"S": {"distribution": {"2": 0, "1": 0, "0": 0, "-1": 0.5, "-2": 0.5}, "expected": -1.5}}
    g2 = grade_conversation(f, {"rude": [], "slow": []}, rub)
    assert by_id(g2)["sat"].passed is False and g2.quality["S"].expected == -1.5
