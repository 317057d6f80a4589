"""The app factory and the server entry point (`grader serve`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

import grader
from grader.engine import Grader
from serving import errors, web
from serving.db import Database
from serving.jobs import JobWorker
from serving.migrate import upgrade
from serving.routes import admin, conversations, disputes, grading, health, jobs, mining
from serving.routes.common import BODY_MODELS
from serving.runner import GradingRunner
from serving.settings import Settings

DESCRIPTION = """QA grading (质检) of Chinese customer-service conversations, as a service.

Authenticate with `Authorization: Bearer KEY` (keys from `grader keys create`). Errors answer
`{"error": {"code", "message", "field"}}`. Roles: admin (keys, rubric), reviewer (reviews,
disputes, statistics), agent (own conversations, disputes), client (grading, results)."""

ROUTERS = (health.router, grading.router, jobs.router, conversations.router, disputes.router, mining.router,
           admin.router)


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document plus the schemas of bodies the routes read themselves."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _, defs = models_json_schema([(m, "validation") for m in BODY_MODELS.values()],
                                     ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings | None = None, engine: Grader | None = None, *,
               database: Database | None = None) -> FastAPI:
    """The service for these settings and grading engine (the caller chooses the engine; none
    is built here). Brings the database schema up to date first."""
    if engine is None:
        raise ValueError("create_app needs a grading engine: the CLI or the caller builds it")
    settings = settings or Settings()
    database = database or Database(settings.db_url)
    upgrade(database)
    runner = GradingRunner(engine)
    runner.load()
    worker = (JobWorker(database, runner, settings.job_batch_size, settings.worker_poll_seconds)
              if settings.worker else None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        yield
        if worker is not None:
            worker.stop()

    app = FastAPI(title="grader", version=grader.__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings, app.state.database, app.state.runner, app.state.worker = settings, database, runner, worker
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    web.install(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def run_server(host: str, port: int, db_url: str, engine: Grader) -> None:
    """Serve the API with uvicorn (the job worker runs in the same process)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(Settings(db_url=db_url), engine)
    uvicorn.run(app, host=host, port=port, log_level="info")
