"""`Idempotency-Key` on POST /v1/grade and POST /v1/jobs: the same key with the same body
replays the first answer; with another body it is a 409. The answer is stored in the same
transaction as the writes it reports, so a replay never reports writes that did not happen."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.audit import Caller
from serving.bodies import RawBody
from serving.db import IdempotencyRecord
from serving.errors import Conflict, Invalid

MAX_KEY = 255


def check_key(key: str | None) -> str | None:
    """The header's value, or 422 when it is unusable."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY:
        raise Invalid(f"Idempotency-Key must be 1 to {MAX_KEY} characters", "Idempotency-Key")
    return key


def digest(body: RawBody) -> str:
    """Hash of the body; JSON bodies are hashed in canonical form (whitespace and key order
    do not make another body)."""
    data = body.data
    if body.media_type == "application/json":
        try:
            data = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode("utf-8")
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    return hashlib.sha256(body.media_type.encode() + b"\n" + data).hexdigest()


def replay(session: Session, caller: Caller, route: str, key: str | None, body_hash: str) -> tuple[int, Any] | None:
    """The stored (status, payload) for this key, None when the key is new; 409 on another body."""
    if key is None:
        return None
    row = session.scalar(select(IdempotencyRecord).where(
        IdempotencyRecord.api_key_id == caller.key_id, IdempotencyRecord.route == route, IdempotencyRecord.key == key))
    if row is None:
        return None
    if row.body_hash != body_hash:
        raise Conflict(f"Idempotency-Key {key!r} was used with another body", "Idempotency-Key",
                       code="idempotency_conflict")
    return row.status_code, json.loads(row.response)


def remember(session: Session, caller: Caller, route: str, key: str | None, body_hash: str, status: int, payload: Any) -> None:
    """Store the answer with the request's writes (no-op without a key)."""
    if key is not None:
        session.add(IdempotencyRecord(api_key_id=caller.key_id, route=route, key=key, body_hash=body_hash,
                                      status_code=status, response=json.dumps(payload, ensure_ascii=False)))
