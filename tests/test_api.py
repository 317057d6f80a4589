"""API: grading, bad input and limits, idempotency, conversations, reviews, disputes, audit.
Every test runs against SQLite and PostgreSQL through the HTTP layer."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from conftest_api import api, app, engine, example, examples  # noqa: F401 - fixtures and helpers
from serving.app import create_app
from serving.auth import get_settings
from serving.settings import Settings


def error(r) -> dict:
    body = r.json()
    assert set(body) == {"error"} and {"code", "message", "field"} <= set(body["error"]), body
    return body["error"]


def test_health_and_docs_are_public(api):
    assert api.client.get("/healthz").json()["status"] == "ok"
    assert api.client.get("/docs").status_code == 200
    spec = api.client.get("/openapi.json").json()
    assert "/v1/grade" in spec["paths"] and "ReviewBody" in spec["components"]["schemas"]
    assert all(op.get("summary") for path in spec["paths"].values() for op in path.values())


def test_grade_one_conversation_returns_the_contract_grade_with_versions(api):
    r = api.post("/v1/grade", example("ex-ecommerce-01"), "client")
    assert r.status_code == 200
    grade = r.json()
    assert {"id", "score", "grade", "red_line", "turns", "items"} <= set(grade)
    assert grade["rubric"] == {"id": "default", "version": engine().rubric.version}
    assert grade["model"] == engine().model_info()
    stored = api.get("/v1/conversations/ex-ecommerce-01").json()
    assert stored["machine_grade"] == grade
    assert stored["history"][0]["rubric"]["version"] == engine().rubric.version
    assert stored["history"][0]["model"] == engine().model_info()


def test_a_list_answers_in_input_order_with_error_records_in_place(api):
    convs = examples(3) + [{"id": "bad-1", "turns": [{"speaker": "bot", "text": "hi"}]}, examples(1)[0]]
    results = api.grade(convs)
    assert [r["id"] for r in results] == [c["id"] for c in convs]
    assert results[3]["error"]["field"] == "turns.0.speaker"
    assert results[4]["error"]["code"] == "duplicate_id"
    assert "score" in results[0]
    assert api.get("/v1/conversations/bad-1").status_code == 404  # nothing stored for it


def test_grading_again_stores_a_new_machine_grade_and_reads_the_latest(api):
    conv = example("ex-ecommerce-01")
    api.grade([conv])
    conv["turns"] = conv["turns"][:4]  # no closing any more
    second = api.grade([conv])[0]
    view = api.get("/v1/conversations/ex-ecommerce-01").json()
    assert len(view["history"]) == 2 and view["machine_grade"]["score"] == second["score"]
    assert len(view["transcript"]["turns"]) == 4


@pytest.mark.parametrize("body,field", [
    ({"id": "x", "turns": [{"speaker": "robot", "text": "hi"}]}, "turns.0.speaker"),
    ({"id": "x", "turns": []}, "turns"),
    ({"turns": [{"speaker": "agent", "text": "hi"}]}, "id"),
    ({"id": "x", "turns": [{"speaker": "agent", "text": "hi", "start": 5, "end": 1}]}, "turns.0"),
    ({"conversations": "nope"}, "conversations"),
    ({"conversations": []}, "conversations"),
])
def test_a_bad_body_is_422_naming_the_field(api, body, field):
    r = api.post("/v1/grade", body, "client")
    assert r.status_code == 422 and error(r)["field"] == field
    assert field in error(r)["message"]


def test_malformed_json_is_422_but_only_after_authentication(api):
    r = api.client.post("/v1/grade", content=b"{not json", headers={**api.h("client"), "Content-Type": "application/json"})
    assert r.status_code == 422 and error(r)["code"] == "bad_json"
    assert api.client.post("/v1/grade", content=b"{not json").status_code == 401
    assert api.client.post("/v1/grade", content=b"{not json", headers=api.h("reviewer")).status_code == 403


@pytest.mark.parametrize("case", ["turns", "chars", "batch"])
def test_over_the_limits_is_413_naming_the_field(api, case):
    conv = example("ex-ecommerce-01")
    if case == "turns":
        conv["turns"] = conv["turns"] * 50  # 700 turns > 500
        body, field = {"conversations": [examples(1)[0] | {"id": "ok"}, conv]}, "conversations.1.turns"
    elif case == "chars":
        conv["turns"][2]["text"] = "好" * 5001
        body, field = conv, "turns.2.text"
    else:
        body, field = {"conversations": [dict(conv, id=f"c{i}") for i in range(101)]}, "conversations"
    r = api.post("/v1/grade", body, "client")
    assert r.status_code == 413 and error(r)["field"] == field
    assert api.get("/v1/conversations/ok").status_code == 404  # no partial write


def test_limits_come_from_the_environment(api, monkeypatch):
    monkeypatch.setenv("GRADER_MAX_TURNS", "3")
    monkeypatch.setenv("GRADER_MAX_GRADE_CONVERSATIONS", "2")
    settings = Settings(worker=False)
    assert (settings.max_turns, settings.max_grade_conversations) == (3, 2)
    app().dependency_overrides[get_settings] = lambda: settings
    r = api.post("/v1/grade", example("ex-ecommerce-01"), "client")
    assert r.status_code == 413 and error(r)["field"] == "turns"


def test_idempotency_key_replays_the_first_answer_and_rejects_another_body(api):
    conv = example("ex-ecommerce-02")
    first = api.post("/v1/grade", conv, "client", headers={"Idempotency-Key": "k-1"})
    reformatted = json.dumps(conv, indent=2, ensure_ascii=False).encode()  # same body, other whitespace
    again = api.client.post("/v1/grade", content=reformatted,
                            headers={**api.h("client"), "Idempotency-Key": "k-1", "Content-Type": "application/json"})
    assert again.status_code == 200 and again.json() == first.json()
    assert len(api.get("/v1/conversations/ex-ecommerce-02").json()["history"]) == 1  # graded once
    other = api.post("/v1/grade", example("ex-ecommerce-03"), "client", headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409 and error(other)["code"] == "idempotency_conflict"
    # Keys are per API key: another client may use the same one.
    assert api.post("/v1/grade", example("ex-ecommerce-03"), "client2", headers={"Idempotency-Key": "k-1"}).status_code == 200


def test_conversation_view_shows_machine_and_effective_side_by_side(api):
    api.grade([example("ex-ecommerce-01")])
    r = api.post("/v1/conversations/ex-ecommerce-01/reviews", {
        "reason": "结尾没有道别", "items": [{"id": "polite_closing", "passed": False}],
        "turns": [{"index": 1, "behaviors": ["greeting", "empathy"]}]}, "reviewer")
    assert r.status_code == 201
    review = r.json()
    assert review["machine"]["score"] == 100.0 and review["effective"]["score"] == 97.0
    view = api.get("/v1/conversations/ex-ecommerce-01", "reviewer").json()
    assert view["scores"] == {"machine": {"score": 100.0, "grade": "优秀", "red_line": False},
                              "effective": {"score": 97.0, "grade": "优秀", "red_line": False}}
    assert view["machine_grade"]["score"] == 100.0  # stored once, never edited
    assert next(t for t in view["effective_grade"]["turns"] if t["index"] == 1)["behaviors"] == ["greeting", "empathy"]
    assert [r["reason"] for r in view["reviews"]] == ["结尾没有道别"]
    entry = view["audit"][-1]
    assert (entry["action"], entry["actor"], entry["why"]) == ("review.create", "qa-1", "结尾没有道别")
    assert entry["before"]["items"]["polite_closing"] == {"passed": True, "points": 3.0}
    assert entry["after"]["items"]["polite_closing"] == {"passed": False, "points": 0.0}
    assert (entry["before"]["score"], entry["after"]["score"]) == (100.0, 97.0)


@pytest.mark.parametrize("body,status,field", [
    ({"items": [{"id": "polite_closing", "passed": False}]}, 422, "reason"),
    ({"reason": "x", "items": [{"id": "no_such_item", "passed": False}]}, 422, "items.0.id"),
    ({"reason": "x", "items": [{"id": "polite_closing", "points": 9}]}, 422, "items.0.points"),
    ({"reason": "x", "turns": [{"index": 0, "behaviors": ["greeting"]}]}, 422, "turns.0.index"),
    ({"reason": "x", "turns": [{"index": 1, "behaviors": ["dancing"]}]}, 422, "turns.0.behaviors"),
    ({"reason": "x", "score": 120}, 422, "score"),
    ({"reason": "x", "unknown": 1}, 422, "unknown"),
])
def test_bad_reviews_are_422_and_write_nothing(api, body, status, field):
    api.grade([example("ex-ecommerce-01")])
    r = api.post("/v1/conversations/ex-ecommerce-01/reviews", body, "reviewer")
    assert r.status_code == status and error(r)["field"] == field
    view = api.get("/v1/conversations/ex-ecommerce-01").json()
    assert view["reviews"] == [] and [a["action"] for a in view["audit"]] == ["grade.machine"]


def test_review_of_an_unknown_conversation_is_404_before_the_body_is_read(api):
    r = api.post("/v1/conversations/nope/reviews", {"bad": True}, "reviewer")
    assert r.status_code == 404


def test_the_machine_grade_table_is_append_only(api):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    api.grade([example("ex-ecommerce-01")])
    with pytest.raises(DBAPIError, match="append-only"):
        with api.db.engine.begin() as conn:
            conn.execute(text("UPDATE machine_grades SET score = 1"))


def test_dispute_accepted_changes_the_effective_grade_with_an_audit_trail(api):
    api.grade([example("ex-ecommerce-02")])  # agent a-02's conversation
    conv = example("ex-logistics-01")
    conv["agent_id"] = "a-01"
    api.grade([conv])
    machine = api.get("/v1/conversations/ex-logistics-01").json()["machine_grade"]
    r = api.post("/v1/conversations/ex-logistics-01/disputes", {"item": "solution_given", "reason": "我给了方案"}, "agent")
    assert r.status_code == 201 and r.json()["status"] == "open"
    dispute_id = r.json()["id"]
    again = api.post("/v1/conversations/ex-logistics-01/disputes", {"item": "solution_given", "reason": "再提"}, "agent")
    assert again.status_code == 409
    assert api.post("/v1/conversations/ex-ecommerce-02/disputes", {"item": "greeting", "reason": "x"}, "agent").status_code == 404
    assert api.post("/v1/conversations/ex-logistics-01/disputes", {"item": "nope", "reason": "x"}, "agent").status_code == 422
    queue = api.get("/v1/disputes?status=open", "reviewer").json()
    assert [d["id"] for d in queue["items"]] == [dispute_id]
    resolved = api.post(f"/v1/disputes/{dispute_id}/resolve", {"decision": "accepted", "reason": "确有方案"}, "reviewer")
    assert resolved.status_code == 200 and resolved.json()["status"] == "accepted"
    view = api.get("/v1/conversations/ex-logistics-01", "agent").json()
    solution = next(i for i in view["effective_grade"]["items"] if i["id"] == "solution_given")
    assert solution["passed"] and view["scores"]["effective"]["score"] > machine["score"]
    assert view["machine_grade"] == machine
    assert view["reviews"][-1]["source"] == "dispute" and view["reviews"][-1]["dispute_id"] == dispute_id
    assert [a["action"] for a in view["audit"]][-2:] == ["dispute.open", "dispute.resolve"]
    assert view["audit"][-1]["before"]["item"]["passed"] is False and view["audit"][-1]["after"]["item"]["passed"] is True
    twice = api.post(f"/v1/disputes/{dispute_id}/resolve", {"decision": "rejected", "reason": "x"}, "reviewer")
    assert twice.status_code == 409


def test_dispute_rejected_or_partial(api):
    api.grade([example("ex-ecommerce-02")])
    ids = [api.post("/v1/conversations/ex-ecommerce-02/disputes", {"item": item, "reason": "异议"}, "reviewer").json()["id"]
           for item in ("polite_closing", "survey_invite")]
    assert api.post(f"/v1/disputes/{ids[0]}/resolve", {"decision": "partial", "reason": "x"}, "reviewer").status_code == 422
    assert api.post(f"/v1/disputes/{ids[0]}/resolve", {"decision": "maybe", "reason": "x"}, "reviewer").status_code == 422
    assert api.post(f"/v1/disputes/{ids[0]}/resolve", {"decision": "partial", "reason": "半", "points": 1.5},
                    "reviewer").status_code == 200
    assert api.post(f"/v1/disputes/{ids[1]}/resolve", {"decision": "rejected", "reason": "维持"}, "reviewer").status_code == 200
    view = api.get("/v1/conversations/ex-ecommerce-02").json()
    items = {i["id"]: i for i in view["effective_grade"]["items"]}
    assert items["polite_closing"]["points"] == 1.5 and not items["survey_invite"]["passed"]
    assert [d["status"] for d in view["disputes"]] == ["partial", "rejected"]
    assert api.post("/v1/disputes/999/resolve", {"decision": "rejected", "reason": "x"}, "reviewer").status_code == 404


def test_a_review_survives_a_restart(api):
    api.grade([example("ex-ecommerce-01")])
    api.post("/v1/conversations/ex-ecommerce-01/reviews", {"reason": "改判", "score": 85}, "reviewer")
    # A second app on the same database stands for the restarted service.
    restarted = create_app(Settings(db_url=api.db.url.render_as_string(hide_password=False), worker=False), engine())
    try:
        view = TestClient(restarted).get("/v1/conversations/ex-ecommerce-01", headers=api.h("reviewer")).json()
    finally:
        restarted.state.database.dispose()
    assert view["scores"]["machine"]["score"] == 100.0 and view["scores"]["effective"]["score"] == 85.0
    assert [a["action"] for a in view["audit"]] == ["grade.machine", "review.create"]


def test_transcripts_are_shown_with_personal_numbers_masked(api):
    api.grade([example("ex-ecommerce-05")])  # the agent reads a mobile number out
    view = api.get("/v1/conversations/ex-ecommerce-05").json()
    assert "13958762431" not in json.dumps(view, ensure_ascii=False)
    assert view["scores"]["machine"]["red_line"]


def test_conversation_list_is_filtered_by_visibility(api):
    api.grade(examples(6), "client")
    api.grade([example("ex-telecom-01")], "client2")
    assert api.get("/v1/conversations", "admin").json()["total"] == 7
    mine = api.get("/v1/conversations", "client2").json()
    assert [c["id"] for c in mine["items"]] == ["ex-telecom-01"]
    agent = api.get("/v1/conversations", "agent").json()
    assert {c["agent_id"] for c in agent["items"]} == {"a-01"} and agent["total"] == 2
    page = api.get("/v1/conversations?limit=4&offset=0").json()
    assert len(page["items"]) == 4 and page["next_offset"] == 4
