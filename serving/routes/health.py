"""GET /healthz: public liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import text

from serving.auth import get_database, get_runner
from serving.db import Database
from serving.errors import Unavailable
from serving.runner import GradingRunner
from serving.schemas import ErrorBody, Health

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Service and database health (no key needed)", response_model=Health,
            responses={503: {"model": ErrorBody, "description": "database unreachable"}})
def healthz(database: Database = Depends(get_database), runner: GradingRunner = Depends(get_runner)) -> dict:
    try:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is "unavailable"
        raise Unavailable(f"database unreachable: {type(exc).__name__}") from exc
    rubric = runner.rubric
    return {"status": "ok", "database": database.backend, "rubric": {"id": rubric.id, "version": rubric.version},
            "model": runner.model_info()}
