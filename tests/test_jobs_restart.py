"""Kill -9 the real service in the middle of a batch job, restart it, and check that every
conversation ends with exactly one result, in input order; and that a review made before the
crash is still there, machine and effective scores side by side with its audit trail.

The service runs as `python -m grader.cli serve` on a free loopback port (lexicon tagger),
keys come from `grader keys create`; SQLite (a file in tmp_path) and, when reachable,
PostgreSQL (a schema of its own).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest_api import BACKENDS, PG_URL, examples, require_postgres
from serving.db import Database

ROOT = Path(__file__).resolve().parents[1]
N_CONVERSATIONS = 200
BATCH = 2  # small batches: many transactions, so the kill lands in the middle of the job


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


class Service:
    """`grader serve` as a child process."""

    def __init__(self, db_url: str, folder: Path):
        self.db_url, self.folder, self.proc, self.starts = db_url, folder, None, 0

    def start(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.starts += 1
        log = (self.folder / f"server-{self.starts}.log").open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADER_JOB_BATCH_SIZE": str(BATCH),
               "GRADER_WORKER_POLL_SECONDS": "0.1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "grader.cli", "serve", "--host", "127.0.0.1", "--port",
                                      str(self.port), "--db", self.db_url, "--tagger", "lexicon"],
                                     cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, (self.folder / f"server-{self.starts}.log").read_text()
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not come up"
            time.sleep(0.1)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'grader.db'}"
        return
    require_postgres()
    schema = f"grader_restart_{uuid.uuid4().hex[:10]}"
    admin = Database(PG_URL)
    with admin.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


def stored_counts(db_url: str, job_id: str) -> dict[str, int]:
    """Counts read straight from the database, not through the service."""
    queries = {
        "results": "SELECT count(*) FROM job_results WHERE job_id = :j",
        "positions": "SELECT count(DISTINCT position) FROM job_results WHERE job_id = :j",
        "done": "SELECT done FROM jobs WHERE id = :j",
        "grades": "SELECT count(*) FROM machine_grades WHERE job_id = :j",
        "graded_conversations": "SELECT count(DISTINCT conversation_id) FROM machine_grades WHERE job_id = :j",
    }
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            return {k: conn.execute(q.replace(":j", "?"), (job_id,)).fetchone()[0] for k, q in queries.items()}
    from sqlalchemy import text

    db = Database(db_url)
    try:
        with db.engine.connect() as conn:
            return {k: conn.execute(text(q), {"j": job_id}).scalar_one() for k, q in queries.items()}
    finally:
        db.dispose()


def conversations() -> list[dict]:
    base = examples()
    return [dict(base[n % len(base)], id=f"restart-{n:03d}") for n in range(N_CONVERSATIONS)]


def test_kill_during_a_job_and_restart(db_url, tmp_path, record_property):
    client_key = cli("keys", "create", "--role", "client", "--name", "crm", "--db", db_url, cwd=tmp_path)
    reviewer_key = cli("keys", "create", "--role", "reviewer", "--name", "qa", "--db", db_url, cwd=tmp_path)
    assert len(client_key.splitlines()) == 1 and client_key.strip().startswith("gk_")
    as_client = {"Authorization": f"Bearer {client_key.strip()}"}
    as_reviewer = {"Authorization": f"Bearer {reviewer_key.strip()}"}
    service = Service(db_url, tmp_path)
    try:
        service.start()
        first = examples(1)[0]
        assert httpx.post(f"{service.base}/v1/grade", json=first, headers=as_client).status_code == 200
        reviewed = httpx.post(f"{service.base}/v1/conversations/{first['id']}/reviews", headers=as_reviewer,
                              json={"reason": "未道别", "items": [{"id": "polite_closing", "passed": False}]})
        assert reviewed.status_code == 201

        convs = conversations()
        submit = dict(json={"conversations": convs}, headers={**as_client, "Idempotency-Key": "restart-job"}, timeout=60)
        job = httpx.post(f"{service.base}/v1/jobs", **submit).json()
        started = time.monotonic()
        while True:
            status = httpx.get(f"{service.base}/v1/jobs/{job['id']}", headers=as_client).json()
            if N_CONVERSATIONS // 5 <= status["done"] <= N_CONVERSATIONS * 3 // 4:
                break
            assert status["status"] != "done", "the job finished before it could be killed"
            time.sleep(0.01)
        service.kill()
        killed = time.monotonic()
        at_kill = stored_counts(db_url, job["id"])
        # What was committed is consistent: progress counter and results in the same transactions.
        assert at_kill["done"] == at_kill["results"] == at_kill["positions"] == at_kill["grades"]
        assert 0 < at_kill["results"] < N_CONVERSATIONS

        service.start()
        restarted = time.monotonic()
        while (status := httpx.get(f"{service.base}/v1/jobs/{job['id']}", headers=as_client).json())["status"] != "done":
            assert status["status"] != "failed" and time.monotonic() - restarted < 120
            time.sleep(0.05)
        finished = time.monotonic()

        items, offset = [], 0
        while offset is not None:
            page = httpx.get(f"{service.base}/v1/jobs/{job['id']}/results", params={"offset": offset, "limit": 64},
                             headers=as_client).json()
            items += page["items"]
            offset = page["next_offset"]
        assert [i["id"] for i in items] == [c["id"] for c in convs]  # one each, in input order
        assert all("score" in i for i in items)
        final = stored_counts(db_url, job["id"])
        assert final == {"results": N_CONVERSATIONS, "positions": N_CONVERSATIONS, "done": N_CONVERSATIONS,
                         "grades": N_CONVERSATIONS, "graded_conversations": N_CONVERSATIONS}
        assert (status["done"], status["errors"], status["total"]) == (N_CONVERSATIONS, 0, N_CONVERSATIONS)
        assert httpx.post(f"{service.base}/v1/jobs", **submit).json()["id"] == job["id"]  # key survives too

        view = httpx.get(f"{service.base}/v1/conversations/{first['id']}", headers=as_reviewer).json()
        assert view["scores"]["machine"]["score"] > view["scores"]["effective"]["score"]
        assert [a["action"] for a in view["audit"]] == ["grade.machine", "review.create"]
        assert view["audit"][-1]["why"] == "未道别" and view["reviews"][0]["reason"] == "未道别"
    finally:
        service.stop()
    measured = {"conversations": N_CONVERSATIONS, "batch": BATCH, "results_at_kill": at_kill["results"],
                "seconds_before_kill": round(killed - started, 2), "seconds_to_restart": round(restarted - killed, 2),
                "seconds_to_finish_after_restart": round(finished - restarted, 2)}
    record_property("restart", json.dumps(measured))
    sys.stderr.write(f"\nrestart test ({db_url.split(':')[0]}): {measured}\n")
