"""Coaching search, agreement statistics and the label export (reviewers and admins)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from grader.codebook import BEHAVIORS
from serving import agreement, export, search
from serving.audit import Caller
from serving.auth import allow, get_database, get_session
from serving.db import Database
from serving.routes.common import Limit, Offset, errors
from serving.schemas import AgreementStats, ExamplePage

router = APIRouter(tags=["mining"])
REVIEWERS = allow("admin", "reviewer")
Behavior = Literal[BEHAVIORS]  # type: ignore[valid-type]


def _filters(behavior: Behavior | None = Query(None, description="a behavior some agent turn carries"),
             missing: Behavior | None = Query(None, description="a behavior no agent turn carries"),
             item_failed: str | None = Query(None, description="a rubric item that failed"),
             red_line: bool | None = Query(None),
             score_min: float | None = Query(None, ge=0, le=100), score_max: float | None = Query(None, ge=0, le=100),
             agent_id: str | None = Query(None), team: str | None = Query(None, description="transcript metadata.team"),
             date_from: date | None = Query(None, description="first day (the conversation's own date), inclusive"),
             date_to: date | None = Query(None, description="last day, inclusive")) -> search.Filters:
    return search.Filters(behavior=behavior, missing=missing, item_failed=item_failed, red_line=red_line,
                          score_min=score_min, score_max=score_max, agent_id=agent_id, team=team,
                          date_from=date_from, date_to=date_to)


@router.get("/v1/examples", summary="Coaching search over effective grades: turns with their context",
            description="A hit is a turn carrying `behavior`, else an evidence turn of `item_failed` or of a "
                        "red line (`red_line=true`), else a conversation (turn null).",
            response_model=ExamplePage, responses=errors())
def examples(caller: Caller = Depends(REVIEWERS), filters: search.Filters = Depends(_filters), limit: Limit = 50,
             offset: Offset = 0, session: Session = Depends(get_session)) -> dict:
    return search.find_examples(session, filters, limit, offset)


@router.get("/v1/stats/agreement", summary="Machine vs human agreement per item and behavior; per-agent scores",
            response_model=AgreementStats, responses=errors())
def stats(caller: Caller = Depends(REVIEWERS), filters: search.Filters = Depends(_filters),
          session: Session = Depends(get_session)) -> dict:
    return agreement.agreement_stats(session, filters)


@router.get("/v1/export/labels", summary="Reviewed conversations as labeled training data (JSON Lines)",
            response_class=StreamingResponse, responses={200: {"content": {"application/x-ndjson": {}}}, **errors()})
def export_labels(caller: Caller = Depends(REVIEWERS), filters: search.Filters = Depends(_filters),
                  relabeled_only: bool = Query(False, description="only conversations whose turn labels were reviewed"),
                  database: Database = Depends(get_database)) -> StreamingResponse:
    return StreamingResponse(export.export_lines(database, filters, relabeled_only), media_type="application/x-ndjson")
