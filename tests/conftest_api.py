"""Fixtures of the API tests, imported by each tests/test_api*.py module.

One app (lexicon tagger, no worker thread) serves both backends: each test gets a clean
database of its backend through a dependency override of `get_database`. SQLite is a file in a
temporary folder; PostgreSQL is a schema of its own for this test session, dropped at exit.
Without a reachable PostgreSQL the postgresql cases skip, except under CI=true where they fail.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from conftest import EXAMPLES
from grader.behaviors.lexicon import LexiconTagger
from grader.engine import Grader
from grader.rubric.schema import default_rubric_path, load_rubric
from serving import keys
from serving.app import create_app
from serving.auth import get_database
from serving.db import Base, Database
from serving.jobs import JobWorker
from serving.migrate import upgrade
from serving.settings import Settings

PG_URL = os.environ.get("GRADER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
ROLES = ("admin", "reviewer", "agent", "client")


@functools.cache
def engine() -> Grader:
    grader = Grader(load_rubric(default_rubric_path()), LexiconTagger())
    grader.load()
    return grader


@functools.cache
def _tmp() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="grader-api-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@functools.cache
def app():
    """The app under test, created once (its own database is the SQLite one)."""
    settings = Settings(db_url=f"sqlite:///{_tmp() / 'api.db'}", worker=False)
    return create_app(settings, engine(), database=database("sqlite"))


@functools.cache
def _postgres_reachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        return f"{type(exc).__name__}: {exc}".strip()


def require_postgres() -> None:
    """Skip when no PostgreSQL server answers, or fail when CI=true."""
    problem = _postgres_reachable()
    if problem is not None:
        message = f"PostgreSQL not reachable at {PG_URL} ({problem})"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI=true requires the PostgreSQL tests to run", pytrace=False)
        pytest.skip(message)


@functools.cache
def _postgres() -> Database:
    require_postgres()
    schema = f"grader_test_{uuid.uuid4().hex[:12]}"
    admin = Database(PG_URL)
    with admin.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    atexit.register(_drop_schema, admin, schema)
    return Database(f"{PG_URL}?options=-csearch_path%3D{schema}")


def _drop_schema(admin: Database, schema: str) -> None:
    with admin.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    admin.dispose()


@functools.cache
def database(backend: str) -> Database:
    """The test database of a backend, migrated once per session."""
    db = Database(f"sqlite:///{_tmp() / 'api.db'}") if backend == "sqlite" else _postgres()
    upgrade(db)
    return db


def wipe(db: Database) -> None:
    """Empty every table (the schema and its migration stay)."""
    # DELETE rather than TRUNCATE: on tables this small it is several times faster.
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))


@dataclass
class Api:
    """A client on a clean database, with one key per role (plus a second agent and client)."""

    backend: str
    client: TestClient
    db: Database
    keys: dict[str, str] = field(default_factory=dict)

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def get(self, path: str, who: str = "admin", **kw):
        return self.client.get(path, headers=self.h(who), **kw)

    def post(self, path: str, body: Any = None, who: str = "admin", **kw):
        headers = {**self.h(who), **kw.pop("headers", {})}
        return self.client.post(path, json=body, headers=headers, **kw) if body is not None else \
            self.client.post(path, headers=headers, **kw)

    def grade(self, convs: list[dict], who: str = "client") -> list[dict]:
        r = self.post("/v1/grade", {"conversations": convs}, who)
        assert r.status_code == 200, r.text
        return r.json()["results"]

    def worker(self, batch_size: int = 16) -> JobWorker:
        return JobWorker(self.db, app().state.runner, batch_size=batch_size)


def make_api(backend: str) -> Api:
    db = database(backend)
    wipe(db)
    application = app()
    application.dependency_overrides[get_database] = lambda: db
    api = Api(backend, TestClient(application), db)
    with db.session() as session:
        for who, role, name in [("admin", "admin", "root"), ("reviewer", "reviewer", "qa-1"), ("agent", "agent", "a-01"),
                                ("agent2", "agent", "a-03"), ("client", "client", "crm"), ("client2", "client", "crm-2")]:
            api.keys[who] = keys.issue_key(session, role, name)[1]
        session.commit()
    return api


@pytest.fixture(params=BACKENDS)
def api(request) -> Api:
    """An Api on a clean database, once per backend."""
    yield make_api(request.param)
    app().dependency_overrides.clear()


@functools.cache
def _examples() -> tuple[str, ...]:
    return tuple(line for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip())


def examples(n: int | None = None) -> list[dict]:
    """Fresh copies of the example transcripts (37 of them)."""
    return [json.loads(line) for line in _examples()[:n]]


def example(conv_id: str) -> dict:
    return next(c for c in examples() if c["id"] == conv_id)
