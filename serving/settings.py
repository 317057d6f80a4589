"""Deployment settings, from environment variables prefixed GRADER_ (e.g. GRADER_MAX_TURNS)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Database URL, request limits and the job worker's knobs."""

    model_config = SettingsConfigDict(env_prefix="GRADER_", extra="ignore")

    db_url: str = "sqlite:///grader.db"
    max_turns: int = Field(500, ge=1, description="turns per conversation")
    max_turn_chars: int = Field(5000, ge=1, description="characters per turn")
    max_grade_conversations: int = Field(100, ge=1, description="conversations per POST /v1/grade")
    max_job_conversations: int = Field(100_000, ge=1, description="conversations per job")
    max_body_bytes: int = Field(512 * 1024 * 1024, ge=1024, description="bytes per request body")
    job_batch_size: int = Field(16, ge=1, description="conversations graded per job transaction")
    worker: bool = Field(True, description="run the job worker thread in the service process")
    worker_poll_seconds: float = Field(1.0, gt=0, description="idle worker's look for new jobs")
