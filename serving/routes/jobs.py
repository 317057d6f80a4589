"""Batch jobs: submit, list, poll, page through results."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from serving import jobs
from serving.audit import Caller
from serving.auth import allow, get_session, get_settings
from serving.bodies import RawBody, read_body
from serving.db import Job
from serving.routes.common import Limit, Offset, body_doc, errors
from serving.routes.grading import TranscriptList
from serving.schemas import JobCreated, JobList, JobResults, JobStatus
from serving.settings import Settings

router = APIRouter(tags=["jobs"])
GRADERS = ("admin", "client")


def _job(job_id: str, caller: Caller = Depends(allow(*GRADERS)), session: Session = Depends(get_session)) -> Job:
    return jobs.visible_job(session, caller, job_id)


@router.post("/v1/jobs", status_code=202, summary="Submit a batch job",
             description="`{\"conversations\": [...]}`, a JSON Lines body (`Content-Type: application/x-ndjson`) "
                         "or a multipart `file`. Graded in the background; survives restarts.",
             response_model=JobCreated, responses=errors(409, 413, 422),
             openapi_extra=body_doc(TranscriptList, ndjson=True, multipart=True))
def submit_job(request: Request, caller: Caller = Depends(allow(*GRADERS)), body: RawBody = Depends(read_body),
               idempotency_key: str | None = Header(None, description="replays the first answer for the same body"),
               session: Session = Depends(get_session), settings: Settings = Depends(get_settings)) -> JSONResponse:
    status, payload = jobs.create_job(session, settings, caller, body, idempotency_key)
    if request.app.state.worker is not None:
        request.app.state.worker.wake()
    return JSONResponse(payload, status_code=status)


@router.get("/v1/jobs", summary="List jobs (clients: their own)", response_model=JobList, responses=errors())
def list_jobs(limit: Limit = 100, offset: Offset = 0, caller: Caller = Depends(allow(*GRADERS)),
              session: Session = Depends(get_session)) -> dict:
    return jobs.list_jobs(session, caller, limit, offset)


@router.get("/v1/jobs/{job_id}", summary="A job's progress", response_model=JobStatus, responses=errors(404))
def job_status(job: Job = Depends(_job)) -> dict:
    return jobs.job_view(job)


@router.get("/v1/jobs/{job_id}/results", summary="A page of a job's results, in input order",
            response_model=JobResults, responses=errors(404))
def job_results(limit: Limit = 100, offset: Offset = 0, job: Job = Depends(_job),
                session: Session = Depends(get_session)) -> dict:
    return jobs.job_results(session, job, offset, limit)
