"""Keys and rubric (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from serving import keys
from serving.audit import Caller
from serving.auth import allow, get_runner, get_session
from serving.bodies import RawBody, parse_json, read_body, validate
from serving.routes.common import body_doc, errors
from serving.runner import GradingRunner
from serving.schemas import KeyBody, KeyCreated, KeyOut, RubricInfo

router = APIRouter(tags=["admin"])
ADMIN = allow("admin")


@router.get("/v1/keys", summary="List API keys (never their secrets)", response_model=list[KeyOut], responses=errors())
def list_keys(caller: Caller = Depends(ADMIN), session: Session = Depends(get_session)) -> list:
    return keys.list_keys(session)


@router.post("/v1/keys", status_code=201, summary="Create an API key (shown once)", response_model=KeyCreated,
             responses=errors(422), openapi_extra=body_doc(KeyBody))
def create_key(caller: Caller = Depends(ADMIN), body: RawBody = Depends(read_body),
               session: Session = Depends(get_session)) -> dict:
    request = validate(KeyBody, parse_json(body))
    row, key = keys.create_key_row(session, request.role, request.name, caller)
    return {**KeyOut.model_validate(row, from_attributes=True).model_dump(), "key": key}


@router.post("/v1/keys/{key_id}/revoke", summary="Revoke an API key", response_model=KeyOut, responses=errors(404))
def revoke_key(key_id: int, caller: Caller = Depends(ADMIN), session: Session = Depends(get_session)):
    return keys.revoke_key(session, key_id, caller)


@router.get("/v1/rubric", summary="The rubric and models grading runs with", response_model=RubricInfo,
            responses=errors())
def rubric(caller: Caller = Depends(ADMIN), runner: GradingRunner = Depends(get_runner)) -> dict:
    r = runner.rubric
    return {"id": r.id, "version": r.version, "name": r.name, "model": runner.model_info(),
            "rubric": r.model_dump(mode="json", by_alias=True, exclude_none=True)}
