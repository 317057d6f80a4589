"""Request bodies: read under a size cap (413), decoded (422), checked against the limits on
turns and characters (413) and validated into models (422 naming the field).

Routes read bodies themselves, after authentication, so that a malformed body from a caller
without a key is still a 401.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from grader.readers import field_path
from serving.auth import get_settings
from serving.errors import Invalid, TooLarge
from serving.settings import Settings

M = TypeVar("M", bound=BaseModel)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines")


@dataclass(frozen=True)
class RawBody:
    data: bytes
    content_type: str

    @property
    def media_type(self) -> str:
        return self.content_type.split(";", 1)[0].strip().lower()


async def _capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise TooLarge(f"request body of {int(declared)} bytes exceeds the limit of {cap}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise TooLarge(f"request body exceeds the limit of {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _uploaded_file(request: Request, data: bytes) -> RawBody:
    async def replay() -> dict:
        return {"type": "http.request", "body": data, "more_body": False}

    form = await Request(request.scope, replay).form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Invalid("a multipart upload needs a `file` part (JSON Lines)", "file")
    return RawBody(await upload.read(), "application/x-ndjson")


async def read_body(request: Request, settings: Settings = Depends(get_settings)) -> RawBody:
    """The request body (a multipart `file` part stands for a JSON Lines body)."""
    data = await _capped(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type", "application/json")
    if content_type.lower().startswith("multipart/form-data"):
        return await _uploaded_file(request, data)
    return RawBody(data, content_type)


def parse_json(body: RawBody) -> Any:
    """The body decoded as one JSON value (422 `bad_json` when it is not)."""
    if not body.data.strip():
        raise Invalid("the request needs a JSON body", code="bad_json")
    try:
        return json.loads(body.data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(f"the body is not valid JSON: {exc}", code="bad_json") from exc


def validate(model: type[M], data: Any, prefix: str = "") -> M:
    """`data` as `model`, or 422 naming the first field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = prefix + field_path(err["loc"]) if err["loc"] else (prefix.rstrip(".") or None)
        raise Invalid(f"{field or 'body'}: {err['msg']}", field) from exc


def check_limits(raw: Any, settings: Settings, prefix: str = "") -> None:
    """413 naming the field when a conversation has too many turns or too long a turn."""
    turns = raw.get("turns") if isinstance(raw, dict) else None
    if not isinstance(turns, list):
        return
    if len(turns) > settings.max_turns:
        raise TooLarge(f"{prefix}turns: {len(turns)} turns exceed the limit of {settings.max_turns}", f"{prefix}turns")
    for n, turn in enumerate(turns):
        text = turn.get("text") if isinstance(turn, dict) else None
        if isinstance(text, str) and len(text) > settings.max_turn_chars:
            raise TooLarge(f"{prefix}turns.{n}.text: {len(text)} characters exceed the limit of "
                           f"{settings.max_turn_chars}", f"{prefix}turns.{n}.text")
