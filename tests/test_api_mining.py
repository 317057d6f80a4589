"""Coaching search, agreement statistics, label export, and the schema migrations."""

from __future__ import annotations

import json
import random

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest_api import BACKENDS, api, database, example, examples  # noqa: F401 - fixtures and helpers
from grader.labels import read_written
from serving.agreement import cohen_kappa, summarise
from serving.db import Base, Database
from serving.keys import create_key, lookup
from serving.migrate import current_revision, upgrade


@pytest.fixture
def graded(api):
    """All 37 examples graded; returns the api and the machine grades by id."""
    grades = api.grade(examples(20)) + api.grade(examples()[20:])
    return api, {g["id"]: g for g in grades}


def everything(api, query: str, limit: int = 13) -> tuple[list[dict], int]:
    items, offset, total = [], 0, None
    while offset is not None:
        page = api.get(f"/v1/examples?{query}&limit={limit}&offset={offset}", "reviewer").json()
        total = page["total"] if total is None else total
        assert page["total"] == total
        items += page["items"]
        offset = page["next_offset"]
    assert len(items) == total
    return items, total


def review(api, conv_id, **body):
    r = api.post(f"/v1/conversations/{conv_id}/reviews", {"reason": "复核", **body}, "reviewer")
    assert r.status_code == 201, r.text


def test_behavior_search_returns_every_turn_with_its_context(graded):
    api, grades = graded
    expected = {(g["id"], t["index"]) for g in grades.values() for t in g["turns"] if "empathy" in t["behaviors"]}
    items, total = everything(api, "behavior=empathy")
    assert {(i["conversation_id"], i["turn"]) for i in items} == expected and total == len(expected)
    transcripts = {c["id"]: c["turns"] for c in examples()}
    for hit in items:
        turns = transcripts[hit["conversation_id"]]
        assert "empathy" in hit["behaviors"] and hit["speaker"] == "agent"
        assert [c["index"] for c in hit["context"]] == [i for i in (hit["turn"] - 1, hit["turn"] + 1) if 0 <= i < len(turns)]
        assert hit["score"] == grades[hit["conversation_id"]]["score"]


def test_missing_behavior_and_failed_item_and_red_line_filters(graded):
    api, grades = graded
    no_closing = {g["id"] for g in grades.values() if not any("closing" in t["behaviors"] for t in g["turns"])}
    items, _ = everything(api, "missing=closing")
    assert {i["conversation_id"] for i in items} == no_closing and all(i["turn"] is None for i in items)
    failed = {g["id"] for g in grades.values() for i in g["items"] if i["id"] == "polite_closing" and not i["passed"]}
    assert {i["conversation_id"] for i in everything(api, "item_failed=polite_closing")[0]} == failed
    red = {g["id"] for g in grades.values() if g["red_line"]}
    hits, _ = everything(api, "red_line=true")
    assert {i["conversation_id"] for i in hits} == red and all(i["red_line"] and i["turn"] is not None for i in hits)
    clean, _ = everything(api, "red_line=false")
    assert not red & {i["conversation_id"] for i in clean}


def test_score_agent_team_and_date_filters(graded):
    api, grades = graded
    items, _ = everything(api, "score_min=60&score_max=90")
    assert {i["conversation_id"] for i in items} == {k for k, g in grades.items() if 60 <= g["score"] <= 90}
    by_agent, _ = everything(api, "agent_id=a-02&behavior=greeting")
    assert by_agent and {i["agent_id"] for i in by_agent} == {"a-02"}
    team = {c["id"] for c in examples() if c.get("metadata", {}).get("team") == "team-b"}
    assert {i["conversation_id"] for i in everything(api, "team=team-b")[0]} == team
    day = example("ex-ecommerce-01")["started_at"][:10]
    on_day = {c["id"] for c in examples() if (c.get("started_at") or "")[:10] == day}
    assert {i["conversation_id"] for i in everything(api, f"date_from={day}&date_to={day}")[0]} == on_day
    dated = [i["started_at"][:10] for i in everything(api, "date_from=2000-01-01")[0]]
    assert dated == sorted(dated, reverse=True)  # newest first


def test_search_runs_over_effective_grades(graded):
    api, grades = graded
    turn = next(t["index"] for t in grades["ex-ecommerce-01"]["turns"] if "empathy" in t["behaviors"])
    review(api, "ex-ecommerce-01", turns=[{"index": turn, "behaviors": ["greeting"]}])
    review(api, "ex-ecommerce-05", red_line=False)
    hits = {(i["conversation_id"], i["turn"]) for i in everything(api, "behavior=empathy")[0]}
    assert ("ex-ecommerce-01", turn) not in hits
    assert "ex-ecommerce-05" not in {i["conversation_id"] for i in everything(api, "red_line=true")[0]}


@pytest.mark.parametrize("query,field", [("behavior=smiling", "behavior"), ("date_from=yesterday", "date_from"),
                                         ("score_min=-1", "score_min"), ("limit=0", "limit")])
def test_bad_search_parameters_are_422_naming_them(api, query, field):
    r = api.get(f"/v1/examples?{query}", "reviewer")
    assert r.status_code == 422 and r.json()["error"]["field"] == field


def test_agreement_statistics(graded):
    api, grades = graded
    empty = api.get("/v1/stats/agreement", "reviewer").json()
    assert empty["reviewed_conversations"] == 0 and empty["items"] == []
    review(api, "ex-ecommerce-01", items=[{"id": "polite_closing", "passed": False}])  # machine yes, human no
    review(api, "ex-ecommerce-02", items=[{"id": "polite_closing", "passed": True}])   # machine no, human yes
    review(api, "ex-ecommerce-03")                                                     # confirmed: no / no
    turn = grades["ex-ecommerce-03"]["turns"][0]
    review(api, "ex-ecommerce-03", turns=[{"index": turn["index"], "behaviors": turn["behaviors"] + ["closing"]}])
    stats = api.get("/v1/stats/agreement", "reviewer").json()
    assert stats["reviewed_conversations"] == 3
    closing = next(i for i in stats["items"] if i["id"] == "polite_closing")
    assert closing["confusion"] == {"machine_yes_human_yes": 0, "machine_yes_human_no": 1,
                                    "machine_no_human_yes": 1, "machine_no_human_no": 1}
    assert (closing["n"], closing["agreement"], closing["kappa"]) == (3, 0.3333, -0.5)
    behavior = next(b for b in stats["behaviors"] if b["id"] == "closing")
    turns = sum(len(grades[c]["turns"]) for c in ("ex-ecommerce-01", "ex-ecommerce-02", "ex-ecommerce-03"))
    assert behavior["n"] == turns and behavior["confusion"]["machine_no_human_yes"] == 1
    agents = {a["agent_id"]: a for a in stats["agents"]}
    a02 = [g["score"] for g in grades.values() if example(g["id"])["agent_id"] == "a-02"]
    assert agents["a-02"]["n"] == len(a02) and agents["a-02"]["mean_machine_score"] == round(sum(a02) / len(a02), 2)
    assert agents["a-01"]["mean_score"] < agents["a-01"]["mean_machine_score"] and agents["a-01"]["reviewed"] == 1
    team_a = api.get("/v1/stats/agreement?team=team-b", "reviewer").json()
    assert team_a["reviewed_conversations"] == 0 and {a["agent_id"] for a in team_a["agents"]} == {"a-03", "a-04"}


def test_cohen_kappa_matches_sklearn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = random.Random(7)
    for _ in range(50):
        pairs = [(rng.random() < 0.6, rng.random() < 0.5) for _ in range(rng.randint(2, 40))]
        machine, human = zip(*pairs)
        if len(set(machine) | set(human)) < 2:
            continue
        from collections import Counter

        ours = summarise(Counter(pairs))["kappa"]
        assert ours == pytest.approx(sklearn.cohen_kappa_score(machine, human), abs=1e-4)


def test_cohen_kappa_is_null_when_undefined():
    same = {"machine_yes_human_yes": 4, "machine_yes_human_no": 0, "machine_no_human_yes": 0, "machine_no_human_no": 0}
    assert cohen_kappa(same) is None
    assert cohen_kappa(dict.fromkeys(same, 0)) is None


def test_label_export_is_training_data(graded, tmp_path):
    api, grades = graded
    turn = grades["ex-ecommerce-05"]["turns"][0]
    review(api, "ex-ecommerce-05", turns=[{"index": turn["index"], "behaviors": ["greeting", "probing"]}])
    review(api, "ex-bank-01", items=[{"id": "greeting", "passed": False}])
    r = api.get("/v1/export/labels", "reviewer")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [c["id"] for c in lines] == ["ex-bank-01", "ex-ecommerce-05"]  # reviewed ones only
    path = tmp_path / "reviewed.jsonl"
    path.write_text(r.text, encoding="utf-8")
    labeled = {c.transcript.id: c for c in read_written(path)}
    assert labeled["ex-ecommerce-05"].labels[turn["index"]] == ("greeting", "probing")
    assert all(c.split == "train" for c in labeled.values())
    machine_labels = {t["index"]: tuple(t["behaviors"]) for t in grades["ex-bank-01"]["turns"]}
    assert labeled["ex-bank-01"].labels == machine_labels  # labels confirmed as they were
    for conv in lines:
        assert all(("labels" in t) == (t["speaker"] == "agent") for t in conv["turns"])
    assert "13958762431" not in r.text  # personal numbers stay masked
    only = api.get("/v1/export/labels?relabeled_only=true", "reviewer").text.splitlines()
    assert [json.loads(x)["id"] for x in only] == ["ex-ecommerce-05"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_match_the_models_and_are_idempotent(backend):
    db = database(backend)
    upgrade(db)
    assert current_revision(db) == "0001_initial"
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []


def test_keys_create_migrates_a_new_database_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key = create_key(db_url="sqlite:///fresh.db", role="agent", name="a-09")
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    with db.session() as session:
        caller = lookup(session, key)
    assert (caller.role, caller.name) == ("agent", "a-09")
    with pytest.raises(ValueError, match="role"):
        create_key(db_url="sqlite:///fresh.db", role="superuser", name="x")
    db.dispose()
