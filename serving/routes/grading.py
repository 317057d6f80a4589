"""POST /v1/grade: grade one transcript or a small list, synchronously."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, RootModel
from sqlalchemy.orm import Session

from grader.types import Grade, Transcript
from serving import grading
from serving.audit import Caller
from serving.auth import allow, get_runner, get_session, get_settings
from serving.bodies import RawBody, read_body
from serving.routes.common import body_doc, errors
from serving.runner import GradingRunner
from serving.settings import Settings

router = APIRouter(tags=["grading"])


class TranscriptList(BaseModel):
    conversations: list[Transcript]


class GradeRequest(RootModel[Transcript | TranscriptList]):
    """One transcript, or `{"conversations": [...]}`."""


@router.post("/v1/grade", summary="Grade one conversation, or a list of them",
             description="One transcript answers its grade (422 when it is bad). `{\"conversations\": [...]}` "
                         "answers `{\"results\": [...]}` in input order, a bad conversation becoming an error "
                         "record in its place. Every graded conversation is stored under its id.",
             response_model=None, responses={200: {"model": Grade}, **errors(409, 413, 422)},
             openapi_extra=body_doc(GradeRequest))
def grade(caller: Caller = Depends(allow("admin", "client")), body: RawBody = Depends(read_body),
          idempotency_key: str | None = Header(None, description="replays the first answer for the same body"),
          session: Session = Depends(get_session), runner: GradingRunner = Depends(get_runner),
          settings: Settings = Depends(get_settings)) -> JSONResponse:
    status, payload = grading.grade_request(session, runner, settings, caller, body, idempotency_key)
    return JSONResponse(payload, status_code=status)
