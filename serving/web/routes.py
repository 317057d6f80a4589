"""The review workbench's routes: the page at `/` (public: the login screen), its static files
under `/static/` (public), and four JSON endpoints behind the API keys."""

from __future__ import annotations

import hashlib
from datetime import date
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

import grader
from serving.audit import Caller
from serving.auth import allow, get_runner, get_session
from serving.routes.common import Limit, Offset, errors
from serving.runner import GradingRunner
from serving.search import Filters
from serving.web import queries
from serving.web.schemas import Me, Overview, QueueFacets, QueuePage
from serving.web.triage import Watch, watch_for

PACKAGE = Path(__file__).resolve().parents[1]
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"

# The page runs only its own script and style: no inline code, nothing from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["workbench"])
REVIEWERS = allow("admin", "reviewer")


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


@cache
def asset_version() -> str:
    """A digest of the static files, appended to their URLs so a new release is never cached."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def render_page() -> str:
    return _environment().get_template("workbench.html").render(version=grader.__version__, assets=asset_version())


def _watch(runner: GradingRunner = Depends(get_runner)) -> Watch:
    return watch_for(runner.rubric, runner.engine.tagger.thresholds)


def _memo(request: Request) -> queries.TriageMemo:
    return request.app.state.triage_memo


def _filters(agent_id: str | None = Query(None), team: str | None = Query(None, description="transcript metadata.team"),
             date_from: date | None = Query(None, description="first day (the conversation's own date), inclusive"),
             date_to: date | None = Query(None, description="last day, inclusive")) -> Filters:
    return Filters(agent_id=agent_id, team=team, date_from=date_from, date_to=date_to)


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def page() -> HTMLResponse:
    return HTMLResponse(render_page(), headers=PAGE_HEADERS)


@router.get("/v1/queue", summary="The review queue: conversations needing review first, with the reasons",
            description="Priority is the sum of the reasons' weights: red lines, open disputes, items and red "
                        "lines that hang on a behavior probability near its threshold, other low-confidence "
                        "behaviors, a score near a grade-band boundary; reviewed conversations count a quarter "
                        "(open disputes in full). `status=todo`: not reviewed or with an open dispute.",
            response_model=QueuePage, responses=errors())
def review_queue(caller: Caller = Depends(REVIEWERS), filters: Filters = Depends(_filters),
                 grade: str | None = Query(None, description="effective grade band, e.g. 良好"),
                 status: queries.QueueStatus | None = Query(None, description="todo | done"),
                 limit: Limit = 50, offset: Offset = 0, watch: Watch = Depends(_watch),
                 memo: queries.TriageMemo = Depends(_memo), session: Session = Depends(get_session),
                 runner: GradingRunner = Depends(get_runner)) -> dict:
    return queries.review_queue(session, watch, memo, runner.rubric, filters, grade, status, limit, offset)


@router.get("/v1/facets", summary="Values the workbench's filters can take: agents, teams, grade bands",
            response_model=QueueFacets, responses=errors())
def filter_values(caller: Caller = Depends(REVIEWERS), session: Session = Depends(get_session),
                  runner: GradingRunner = Depends(get_runner)) -> dict:
    return queries.facets(session, runner.rubric)


@router.get("/v1/stats/overview", summary="Dashboard numbers: score distribution, grade counts, most-failed "
            "items, red lines, per-agent averages", response_model=Overview, responses=errors())
def stats_overview(caller: Caller = Depends(REVIEWERS), filters: Filters = Depends(_filters),
                   session: Session = Depends(get_session), runner: GradingRunner = Depends(get_runner)) -> dict:
    return queries.overview(session, filters, runner.rubric)


@router.get("/v1/me", summary="The calling key's role and name, and the labels the review page shows",
            response_model=Me, response_model_exclude_none=True, responses=errors())
def whoami(caller: Caller = Depends(allow("admin", "reviewer", "agent", "client")),
           runner: GradingRunner = Depends(get_runner)) -> dict:
    return queries.me(caller, runner.rubric, runner.engine.tagger.thresholds)


def install(app: FastAPI) -> None:
    """Mount the workbench on the app: its routes and its static files."""
    app.state.triage_memo = queries.TriageMemo()
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=True), name="static")
