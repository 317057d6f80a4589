"""The rubric schema: the shipped rubric loads; every broken file fails naming its field."""

from pathlib import Path

import pytest

from grader.rubric.schema import RubricError, default_rubric_path, load_rubric

BAD = sorted((Path(__file__).parent / "fixtures" / "bad_rubrics").glob("*.yaml"))


def test_default_rubric_loads_with_the_manual_dimensions(rubric):
    labels = {d.id: d.label for d in rubric.dimensions}
    assert labels == {"attitude": "服务态度与专业性", "communication": "沟通能力与效率",
                      "resolution": "问题解决", "service_norms": "服务规范"}
    weights = {d.id: d.weight for d in rubric.dimensions}
    assert max(weights, key=weights.get) == "attitude" and sum(weights.values()) == 100
    norms = {i.id for d in rubric.dimensions if d.id == "service_norms" for i in d.items}
    assert {"greeting", "need_confirmation", "result_confirmation", "polite_closing", "survey_invite"} <= norms
    assert {r.id for r in rubric.red_lines} == {"impolite", "shirking", "pii_leak"}
    assert [b.label for b in rubric.grade_bands] == ["优秀", "良好", "合格", "待改进"]


def test_default_rubric_found_relative_to_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_rubric(default_rubric_path()).id == "default"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_broken_rubric_names_the_field(path):
    expected = path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(RubricError) as exc:
        load_rubric(path)
    assert expected in str(exc.value)
    assert str(path) in str(exc.value)


def test_missing_rubric_file():
    with pytest.raises(RubricError, match="cannot read"):
        load_rubric("/nonexistent/rubric.yaml")
