"""Batch jobs through the HTTP layer: submission forms, progress, paging, idempotency, limits,
and exactly one result per conversation when batches fail, race or are retried."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from conftest_api import api, app, engine, example, examples  # noqa: F401 - fixtures and helpers
from serving import store
from serving.app import create_app
from serving.auth import get_settings
from serving.db import Job, JobResult, MachineGrade
from serving.settings import Settings


def submit(api, body, who="client", **kw):
    r = api.post("/v1/jobs", body, who, **kw)
    assert r.status_code == 202, r.text
    return r.json()


def all_results(api, job_id, limit=7, who="client"):
    items, offset = [], 0
    while offset is not None:
        page = api.get(f"/v1/jobs/{job_id}/results?offset={offset}&limit={limit}", who).json()
        items += page["items"]
        offset = page["next_offset"]
    return items


def counts(api, job_id):
    with api.db.session() as s:
        results = s.scalar(select(func.count()).select_from(JobResult).where(JobResult.job_id == job_id))
        positions = s.scalar(select(func.count(func.distinct(JobResult.position))).where(JobResult.job_id == job_id))
        per_conv = dict(s.execute(select(MachineGrade.conversation_id, func.count()).where(MachineGrade.job_id == job_id)
                                  .group_by(MachineGrade.conversation_id)).all())
    return results, positions, per_conv


def test_a_job_runs_to_done_with_results_in_input_order(api):
    convs = examples()
    created = submit(api, {"conversations": convs})
    assert created["status"] == "queued" and created["total"] == 37
    status = api.get(f"/v1/jobs/{created['id']}", "client").json()
    assert (status["status"], status["done"], status["errors"]) == ("queued", 0, 0)
    assert api.worker(batch_size=16).run_until_idle() == 3  # the last batch also closes the job
    status = api.get(f"/v1/jobs/{created['id']}", "client").json()
    assert (status["status"], status["done"], status["errors"]) == ("done", 37, 0)
    items = all_results(api, created["id"])
    assert [i["id"] for i in items] == [c["id"] for c in convs]
    assert items[0] == api.post("/v1/grade", convs[0], "client").json()  # same grade as synchronously
    view = api.get("/v1/conversations/ex-ecommerce-01", "client").json()
    assert view["history"][0]["job_id"] == created["id"]


def test_json_lines_body_with_bad_lines_gives_error_records_in_place(api):
    lines = [json.dumps(c, ensure_ascii=False) for c in examples(3)]
    lines.insert(1, "{this is not json")
    lines.insert(3, json.dumps({"id": "bad", "turns": [{"speaker": "agent", "text": 1}]}))
    lines.append(lines[0])  # a repeated id
    body = ("\n".join(lines) + "\n\n").encode("utf-8")
    r = api.client.post("/v1/jobs", content=body, headers={**api.h("client"), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202 and r.json()["total"] == 6
    api.worker().run_until_idle()
    status = api.get(f"/v1/jobs/{r.json()['id']}", "client").json()
    assert (status["done"], status["errors"]) == (6, 3)
    items = all_results(api, r.json()["id"])
    assert [i.get("error", {}).get("code") for i in items] == [None, "bad_json", None, "invalid_transcript", None,
                                                               "duplicate_id"]
    assert items[3]["error"]["field"] == "turns.0.text" and "line 2" in items[1]["error"]["message"]


def test_a_multipart_file_upload_is_a_json_lines_job(api):
    data = "\n".join(json.dumps(c, ensure_ascii=False) for c in examples(4)).encode("utf-8")
    r = api.client.post("/v1/jobs", files={"file": ("convs.jsonl", data, "application/x-ndjson")}, headers=api.h("client"))
    assert r.status_code == 202 and r.json()["total"] == 4
    missing = api.client.post("/v1/jobs", files={"other": ("x.jsonl", data)}, headers=api.h("client"))
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "file"


def limit(**kw) -> None:
    app().dependency_overrides[get_settings] = lambda: Settings(worker=False, **kw)


def test_jobs_over_the_limits_are_413_and_store_nothing(api):
    limit(max_job_conversations=3, max_turns=20)
    r = api.post("/v1/jobs", {"conversations": examples(4)}, "client")
    assert r.status_code == 413 and r.json()["error"]["field"] == "conversations"
    long = example("ex-ecommerce-01")
    long["turns"] = long["turns"] * 3
    r = api.client.post("/v1/jobs", content=json.dumps(long, ensure_ascii=False).encode(),
                        headers={**api.h("client"), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 413 and r.json()["error"]["field"] == "conversations.0.turns"
    assert api.get("/v1/jobs", "client").json()["total"] == 0


def test_the_request_body_size_is_capped(api):
    limit(max_body_bytes=2048)
    r = api.post("/v1/jobs", {"conversations": examples(5)}, "client")
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_job_idempotency(api):
    body = {"conversations": examples(2)}
    first = submit(api, body, headers={"Idempotency-Key": "batch-7"})
    assert submit(api, body, headers={"Idempotency-Key": "batch-7"}) == first
    other = api.post("/v1/jobs", {"conversations": examples(3)}, "client", headers={"Idempotency-Key": "batch-7"})
    assert other.status_code == 409
    assert api.get("/v1/jobs", "client").json()["total"] == 1


def test_results_of_a_running_job_stop_at_the_first_missing_position(api):
    job = submit(api, {"conversations": examples(10)})
    worker = api.worker(batch_size=4)
    worker.run_once()
    page = api.get(f"/v1/jobs/{job['id']}/results?offset=0&limit=100", "client").json()
    assert (len(page["items"]), page["next_offset"], page["status"]) == (4, 4, "running")
    assert api.get(f"/v1/jobs/{job['id']}", "client").json()["done"] == 4


def test_a_batch_that_fails_midway_writes_nothing_and_is_retried(api, monkeypatch):
    job = submit(api, {"conversations": examples(12)})
    worker = api.worker(batch_size=5)
    worker.run_once()  # positions 0-4 written
    real, calls = store.save_grade, {"n": 0}

    def crash_on_third(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(*args, **kw)

    monkeypatch.setattr(store, "save_grade", crash_on_third)
    worker.run_once()  # positions 5-9: fails after two conversations were stored in the transaction
    assert counts(api, job["id"])[0] == 5
    monkeypatch.setattr(store, "save_grade", real)
    api.worker(batch_size=5).run_until_idle()  # "restarted" worker resumes
    results, positions, per_conv = counts(api, job["id"])
    assert results == positions == 12 and set(per_conv.values()) == {1} and len(per_conv) == 12
    assert [i["id"] for i in all_results(api, job["id"])] == [c["id"] for c in examples(12)]
    status = api.get(f"/v1/jobs/{job['id']}", "client").json()
    assert (status["status"], status["done"]) == ("done", 12)


def test_a_batch_written_twice_is_refused_as_a_whole(api):
    job = submit(api, {"conversations": examples(6)})
    worker = api.worker(batch_size=6)
    with api.db.session() as s:
        pending = worker._pending(s, job["id"])
        owner = s.get(Job, job["id"]).submitted_by
    graded = worker._grade(pending)  # two workers graded the same batch
    worker._write(job["id"], owner, graded)
    with pytest.raises(IntegrityError):
        worker._write(job["id"], owner, graded)
    results, positions, per_conv = counts(api, job["id"])
    assert results == positions == 6 and set(per_conv.values()) == {1}
    assert api.get(f"/v1/jobs/{job['id']}", "client").json()["done"] == 6


def test_a_job_that_keeps_failing_is_marked_failed(api, monkeypatch):
    job = submit(api, {"conversations": examples(2)})

    def broken(items):
        raise RuntimeError("model crashed")

    monkeypatch.setattr(app().state.runner, "grade", broken)
    worker = api.worker()
    for _ in range(3):
        worker.run_once()
    status = api.get(f"/v1/jobs/{job['id']}", "client").json()
    assert status["status"] == "failed" and status["done"] == 0
    assert worker.run_once() is False


def test_the_service_worker_thread_grades_submitted_jobs(api):
    url = api.db.url.render_as_string(hide_password=False)
    service = create_app(Settings(db_url=url, worker=True, worker_poll_seconds=0.05), engine())
    try:
        with TestClient(service) as client:
            headers = api.h("client")
            job = client.post("/v1/jobs", json={"conversations": examples(5)}, headers=headers).json()
            deadline = time.monotonic() + 30
            while client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["status"] != "done":
                assert time.monotonic() < deadline, "the worker thread did not finish the job"
                time.sleep(0.05)
            assert len(client.get(f"/v1/jobs/{job['id']}/results", headers=headers).json()["items"]) == 5
    finally:
        service.state.database.dispose()
