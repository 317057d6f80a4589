"""Disputes: the reviewers' queue and resolution."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from serving import reviews
from serving.audit import Caller
from serving.auth import allow, get_runner, get_session
from serving.bodies import RawBody, parse_json, read_body, validate
from serving.db import Dispute
from serving.routes.common import Limit, Offset, body_doc, errors
from serving.runner import GradingRunner
from serving.schemas import DisputeList, DisputeOut

router = APIRouter(tags=["disputes"])
Status = Literal["open", "accepted", "rejected", "partial"]


def _dispute(dispute_id: int, session: Session = Depends(get_session)) -> Dispute:
    return reviews.find_dispute(session, dispute_id)


@router.get("/v1/disputes", summary="Disputes, oldest first (agents: on their conversations)",
            response_model=DisputeList, responses=errors())
def list_disputes(status: Status | None = Query(None), limit: Limit = 100, offset: Offset = 0,
                  caller: Caller = Depends(allow("admin", "reviewer", "agent")),
                  session: Session = Depends(get_session)) -> dict:
    return reviews.list_disputes(session, caller, status, limit, offset)


@router.post("/v1/disputes/{dispute_id}/resolve", summary="Accept, partly accept or reject a dispute, with a reason",
             response_model=DisputeOut, responses=errors(404, 409, 422), openapi_extra=body_doc(reviews.ResolveBody))
def resolve(caller: Caller = Depends(allow("admin", "reviewer")), body: RawBody = Depends(read_body),
            dispute: Dispute = Depends(_dispute), session: Session = Depends(get_session),
            runner: GradingRunner = Depends(get_runner)) -> dict:
    decision = validate(reviews.ResolveBody, parse_json(body))
    return reviews.resolve_dispute(session, dispute, caller, decision, runner.rubric)
