"""Unit tests for every rule family: tables of Chinese utterances, boundaries, bad configs."""

import pytest
from pydantic import TypeAdapter, ValidationError

from grader.features.transcript import TranscriptFeatures
from grader.rules.base import CheckSkipped
from grader.rules.registry import AnyRuleConfig, build_rule
from tests.conftest import make_transcript

ADAPTER = TypeAdapter(AnyRuleConfig)


def rule(**config):
    return build_rule(ADAPTER.validate_python(config))


def run(r, transcript, behaviors=None, hits=None):
    f = TranscriptFeatures(transcript, behaviors=behaviors or {}, thresholds={})
    f.hits.update(hits or {})
    return r.run(f)


SATISFIED = dict(id="satisfied", type="keyword", scope={"speaker": "customer"}, phrases=["满意", "没问题了"], negation="reject")


@pytest.mark.parametrize("text, fires", [
    ("非常满意，谢谢", True),
    ("我很不满意", False),
    ("不是很满意", False),
    ("没问题了，谢谢你", True),
    ("满意度调查在哪", True),   # substring matching: see the word-mode test below
])
def test_keyword_negation_reject(text, fires):
    t = make_transcript(("agent", "您好"), ("customer", text))
    assert bool(run(rule(**SATISFIED), t)) is fires


def test_keyword_negation_require_finds_only_negated():
    r = rule(id="unhappy", type="keyword", scope={"speaker": "customer"}, phrases=["满意"], negation="require")
    assert run(r, make_transcript(("customer", "我很不满意")))
    assert not run(r, make_transcript(("customer", "我很满意")))


def test_keyword_word_mode_respects_jieba_boundaries():
    r = rule(id="w", type="keyword", scope={"speaker": "customer"}, phrases=["满意"], match="word")
    assert run(r, make_transcript(("customer", "我很满意")))
    assert not run(r, make_transcript(("customer", "满意度调查在哪里")))


def test_keyword_evidence_has_span_and_explanation():
    r = rule(id="rude", type="keyword", phrases=["说过很多遍"], explanation="不文明：「{text}」")
    t = make_transcript(("customer", "怎么弄"), ("agent", "这个我已经说过很多遍了"))
    [finding] = run(r, t)
    ev = finding.evidence[0]
    assert (ev.turn, t.turns[1].text[ev.start:ev.end]) == (1, "说过很多遍")
    assert finding.explanation == "不文明：「说过很多遍」" and finding.source == "rule"


def test_keyword_full_width_input_matches_half_width_pattern():
    r = rule(id="code", type="keyword", patterns=[r"错误码\s*\d{3}"])
    assert run(r, make_transcript(("agent", "提示错误码　５０２")))


def test_keyword_exclusion_overlapping_hit():
    r = rule(id="sorry", type="keyword", phrases=["抱歉"], exclude=["抱歉[，,]?(这个)?不(可以|能)"])
    assert not run(r, make_transcript(("agent", "抱歉，这个不可以")))
    assert run(r, make_transcript(("agent", "非常抱歉给您带来不便")))


@pytest.mark.parametrize("mode, count, texts, fires", [
    ("all", 1, ["您好", "祝您生活愉快"], True),
    ("all", 1, ["您好", "好的"], False),
    ("at_least", 2, ["您好，祝您愉快"], True),
    ("at_least", 2, ["您好"], False),
    ("none", 1, ["好的", "嗯"], True),
    ("none", 1, ["好的", "您好"], False),
])
def test_keyword_modes(mode, count, texts, fires):
    r = rule(id="m", type="keyword", phrases=["您好", "祝您"], mode=mode, count=count)
    t = make_transcript(*[("agent", x) for x in texts])
    assert bool(run(r, t)) is fires


@pytest.mark.parametrize("scope, expected_turns", [
    ({"speaker": "agent", "first": 1}, [1]),
    ({"speaker": "agent", "last": 1}, [5]),
    ({"speaker": "agent"}, [1, 3, 5]),
    ({"speaker": "customer"}, [0, 2, 4]),
    ({"speaker": "any", "first": 2}, [0, 1]),
])
def test_scope_first_last_speaker(scope, expected_turns):
    r = rule(id="any", type="keyword", patterns=["."], mode="any", scope=scope)
    t = make_transcript(*[("customer" if i % 2 == 0 else "agent", f"第{i}句") for i in range(6)])
    assert sorted({f.evidence[0].turn for f in run(r, t)}) == expected_turns


def test_scope_near_another_rules_hit():
    complaint = rule(id="complaint", type="keyword", scope={"speaker": "customer"}, phrases=["投诉"])
    sorry = rule(id="sorry", type="keyword", phrases=["抱歉"], scope={"speaker": "agent", "near": {"rule": "complaint", "after": 1}})
    t = make_transcript(("agent", "抱歉久等"), ("customer", "我要投诉"), ("agent", "非常抱歉"), ("customer", "嗯"), ("agent", "抱歉打扰"))
    hits = {"complaint": run(complaint, t)}
    assert [f.evidence[0].turn for f in run(sorry, t, hits=hits)] == [2]


@pytest.mark.parametrize("bad, field", [
    (dict(id="x", type="keyword"), "phrases"),
    (dict(id="x", type="keyword", patterns=["(unclosed"]), "invalid regular expression"),
    (dict(id="x", type="keyword", phrases=["a"], mode="sometimes"), "mode"),
    (dict(id="x", type="keyword", phrases=["a"], scope={"first": 1, "last": 1}), "at most one"),
    (dict(id="x", type="keyword", phrases=["a"], color="red"), "color"),
    (dict(id="Bad Id", type="keyword", phrases=["a"]), "id"),
    (dict(id="x", type="timing", metric="silence"), "max"),
    (dict(id="x", type="timing", metric="speed", max=1), "metric"),
    (dict(id="x", type="pii", kinds=["passport"]), "kinds"),
    (dict(id="x", type="repetition", min_count=1), "min_count"),
    (dict(id="x", type="sequence", trigger={"rule": "a", "behavior": "empathy"}, expect=["empathy"]), "exactly one"),
    (dict(id="x", type="sequence", trigger={"rule": "a"}, expect=["hugging"]), "unknown behavior"),
    (dict(id="x", type="telepathy"), "telepathy"),
])
def test_malformed_rule_configs_name_the_problem(bad, field):
    with pytest.raises(ValidationError) as exc:
        ADAPTER.validate_python(bad)
    assert field in str(exc.value)


PII = dict(id="pii", type="pii", kinds=["mobile", "id_card", "bank_card"])


@pytest.mark.parametrize("text, kind, masked", [
    ("好的，您的手机号13958762431已登记", "mobile", "139****2431"),
    ("核对一下身份证号420106195806120314", "id_card", "420106********0314"),
    ("退款到您的卡6217001234567893", "bank_card", "6217********7893"),
])
def test_pii_leak_masked_in_evidence(text, kind, masked):
    [finding] = run(rule(**PII), make_transcript(("customer", "查一下"), ("agent", text)))
    assert finding.details == {"kind": kind, "masked": masked}
    digits = "".join(ch for ch in text if ch.isdigit())
    assert digits not in finding.evidence[0].text and masked in finding.evidence[0].text
    assert digits not in finding.explanation


@pytest.mark.parametrize("speaker, text", [
    ("customer", "我的手机号13958762431"),          # the customer's own words are no leak
    ("agent", "您尾号2431的手机"),
    ("agent", "订单号12345678901234567890"),
    ("agent", "身份证号420106195806120315"),         # checksum fails
    ("agent", "订单号 2026112012345674"),           # passes Luhn, but no card prefix or card word
])
def test_pii_no_leak(speaker, text):
    assert not run(rule(**PII), make_transcript(("customer", "你好"), (speaker, text)))


def timed(*turns):
    return make_transcript(*turns, channel="call")


def test_timing_skips_without_timestamps():
    r = rule(id="fr", type="timing", metric="first_response", max=10)
    with pytest.raises(CheckSkipped, match="时间戳"):
        run(r, make_transcript(("customer", "在吗"), ("agent", "在的")))


def test_timing_channel_restriction_skips():
    r = rule(id="sil", type="timing", metric="silence", max=5, channels=["call"])
    t = make_transcript(("customer", "在吗", 0, 1), ("agent", "在的", 30, 31), channel="chat")
    with pytest.raises(CheckSkipped):
        run(r, t)


@pytest.mark.parametrize("metric, limit, fires_on", [
    ("first_response", {"max": 10}, [(0, 1)]),
    ("reply_latency", {"max": 10}, [(0, 1), (2, 3)]),
    ("silence", {"max": 10}, [(0, 1), (2, 3)]),
    ("overlap", {"max": 0.5}, [(4, 5)]),
])
def test_timing_metrics(metric, limit, fires_on):
    t = timed(("customer", "喂你好", 0, 2), ("agent", "您好", 14, 16), ("customer", "我的宽带坏了", 17, 20),
              ("agent", "我看一下", 35, 37), ("customer", "快点", 38, 42), ("agent", "好的", 41, 42))
    r = rule(id="t", type="timing", metric=metric, **limit)
    assert [tuple(e.turn for e in f.evidence) for f in run(r, t)] == fires_on


def test_timing_boundary_is_not_a_violation():
    t = timed(("customer", "喂", 0, 1), ("agent", "您好", 11, 12))
    assert not run(rule(id="t", type="timing", metric="first_response", max=10), t)
    assert run(rule(id="t", type="timing", metric="first_response", max=9.9), t)


def test_talk_ratio_and_speech_rate():
    t = timed(("customer", "嗯", 0, 1), ("agent", "好" * 40, 1, 5))
    [ratio] = run(rule(id="r", type="timing", metric="talk_ratio", max=3), t)
    assert ratio.details["value"] == 4.0
    [rate] = run(rule(id="s", type="timing", metric="speech_rate", max=7), t)
    assert rate.details["value"] == 10.0
    assert not run(rule(id="s", type="timing", metric="speech_rate", max=10), t)


def test_repetition_of_canned_reply():
    canned = "亲，您的问题已经记录，请耐心等待处理结果哦"
    t = make_transcript(("customer", "到底什么时候退款"), ("agent", canned), ("customer", "我问什么时候"),
                        ("agent", canned), ("customer", "？？"), ("agent", canned + "～"))
    [finding] = run(rule(id="rep", type="repetition", min_count=3), t)
    assert [e.turn for e in finding.evidence] == [1, 3, 5]
    assert not run(rule(id="rep", type="repetition", min_count=4), t)


def test_repetition_ignores_short_turns():
    t = make_transcript(("agent", "好的"), ("agent", "好的"), ("agent", "好的"))
    assert not run(rule(id="rep", type="repetition", min_chars=3), t)


def test_sequence_expects_empathy_after_complaint():
    complaint = rule(id="complaint", type="keyword", scope={"speaker": "customer"}, phrases=["投诉"])
    seq = rule(id="seq", type="sequence", trigger={"rule": "complaint"}, expect=["empathy"])
    t = make_transcript(("customer", "我要投诉你们"), ("agent", "请提供订单号"), ("customer", "还要投诉"), ("agent", "非常抱歉"))
    hits = {"complaint": run(complaint, t)}
    behaviors = {1: {"info_request": 0.9}, 3: {"empathy": 0.95}}
    [violation] = run(seq, t, behaviors=behaviors, hits=hits)
    assert violation.details["trigger_turn"] == 0 and [e.turn for e in violation.evidence] == [0, 1]


def test_sequence_behavior_trigger_within_two():
    seq = rule(id="seq", type="sequence", trigger={"behavior": "info_request"}, expect=["solution"], within=2)
    t = make_transcript(("agent", "请提供订单号"), ("customer", "123"), ("agent", "稍等"), ("agent", "已为您退款"))
    behaviors = {0: {"info_request": 0.9}, 2: {"progress_update": 0.9}, 3: {"solution": 0.9}}
    assert not run(seq, t, behaviors=behaviors)
    assert run(rule(id="seq", type="sequence", trigger={"behavior": "info_request"}, expect=["solution"], within=1), t, behaviors=behaviors)
