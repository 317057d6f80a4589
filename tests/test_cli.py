"""The `grader` command line: outputs, error records, exit codes."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.cli import app
from tests.conftest import EXAMPLES

runner = CliRunner()
CONTRACT_KEYS = {"id", "score", "grade", "red_line", "red_lines", "turns", "items"}
ITEM_KEYS = {"id", "dimension", "points", "max_points", "passed", "source", "evidence", "reason"}


def grade(*args):
    return runner.invoke(app, ["grade", *map(str, args), "--tagger", "lexicon"])


def read_out(path: Path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_grade_examples_writes_one_line_per_conversation(tmp_path):
    out = tmp_path / "g.jsonl"
    result = grade(EXAMPLES, "--out", out)
    assert result.exit_code == 0, result.output
    rows = read_out(out)
    n_in = sum(1 for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip())
    assert len(rows) == n_in >= 30
    for row in rows:
        assert CONTRACT_KEYS <= row.keys()
        assert all(ITEM_KEYS <= item.keys() for item in row["items"])
        assert all(len(t["scores"]) == 12 for t in row["turns"])
    assert "summary" in result.output


def test_phone_number_read_out_is_a_masked_red_line(tmp_path):
    conv = {"id": "leak", "turns": [
        {"speaker": "customer", "text": "我手机号13958762431，帮我查下话费"},
        {"speaker": "agent", "text": "好的，您的号码是13958762431，本月话费68元"}]}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(conv, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert grade(src, "--out", out).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert "13958762431" not in text and "139****2431" in text
    [row] = read_out(out)
    assert row["red_line"] and row["score"] == 0 and row["grade"] == "待改进"
    assert [r["id"] for r in row["red_lines"]] == ["pii_leak"] and row["red_lines"][0]["evidence"][0]["turn"] == 1


def test_bad_conversations_become_error_records_in_place(tmp_path):
    good = {"id": "ok", "turns": [{"speaker": "agent", "text": "您好"}]}
    lines = [good, {"id": "empty", "turns": []}, {"id": "who", "turns": [{"speaker": "客服", "text": "hi"}]}, dict(good, id="ok2")]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert grade(src, "--out", out).exit_code == 0
    rows = read_out(out)
    assert [r["id"] for r in rows] == ["ok", "empty", "who", "ok2"]
    assert rows[1]["error"]["field"] == "turns" and rows[2]["error"]["field"] == "turns.0.speaker"
    assert "turns.0.speaker" in rows[2]["error"]["message"] and "score" in rows[3]


def test_grade_usage_errors_exit_2(tmp_path):
    assert grade(tmp_path / "missing.jsonl").exit_code == 2
    assert grade(EXAMPLES, "--format", "xml").exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n", encoding="utf-8")
    result = grade(EXAMPLES, "--rubric", bad)
    assert result.exit_code == 2 and "dimensions" in result.output


def test_grade_to_stdout(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "x", "turns": [{"speaker": "agent", "text": "您好"}]}) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["grade", str(src), "--tagger", "lexicon", "--quiet"])
    assert result.exit_code == 0 and json.loads(result.stdout.strip())["id"] == "x"


def test_validate_exit_codes(tmp_path):
    assert runner.invoke(app, ["validate", str(EXAMPLES)]).exit_code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "turns": [{"speaker": "bot"}]}\n', encoding="utf-8")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1 and "turns.0.speaker" in result.output


def test_rubric_check(tmp_path):
    from grader.rubric.schema import default_rubric_path

    ok = runner.invoke(app, ["rubric", "check", str(default_rubric_path())])
    assert ok.exit_code == 0 and "ok" in ok.output
    bad = Path(__file__).parent / "fixtures" / "bad_rubrics" / "unknown_field.yaml"
    result = runner.invoke(app, ["rubric", "check", str(bad)])
    assert result.exit_code == 1 and "colour" in result.output
    assert runner.invoke(app, ["rubric", "check", str(tmp_path / "none.yaml")]).exit_code == 2


def test_rubric_sandbox_reports_every_item(tmp_path):
    from grader.rubric.schema import default_rubric_path, load_rubric

    result = runner.invoke(app, ["rubric", "test", str(default_rubric_path()), "--on", str(EXAMPLES), "--tagger", "lexicon", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    ids = [i.id for d in load_rubric(default_rubric_path()).dimensions for i in d.items]
    assert [row["id"] for row in report["items"]] == ids
    greeting = next(r for r in report["items"] if r["id"] == "greeting")
    assert greeting["passed"] + greeting["failed"] + greeting["not_applicable"] == report["conversations"] - report["errors"]
    assert any(r["count"] > 0 for r in report["red_lines"])
    assert any(row["examples"] for row in report["items"])


@pytest.mark.slow
def test_grade_stc3_test_split_without_errors(stc3_dir, tmp_path):
    out = tmp_path / "stc3.jsonl"
    result = grade(stc3_dir / "test.jsonl", "--out", out, "--quiet")
    assert result.exit_code == 0
    rows = read_out(out)
    assert len(rows) == 679 and not [r for r in rows if "error" in r]
    assert all(CONTRACT_KEYS <= r.keys() for r in rows)
