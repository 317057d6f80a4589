"""What the route modules share: request-body documentation, error responses, paging."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel

from serving.schemas import ErrorBody

# Models documented as request bodies; the app adds their schemas to the OpenAPI components.
BODY_MODELS: dict[str, type[BaseModel]] = {}

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, description="position of the first item")]


def body_doc(model: type[BaseModel], *, ndjson: bool = False, multipart: bool = False) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON body (bodies are read by the route, after auth)."""
    BODY_MODELS[model.__name__] = model
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
    if ndjson:
        content["application/x-ndjson"] = {"schema": {"type": "string", "description": "one transcript per line"}}
    if multipart:
        content["multipart/form-data"] = {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary", "description": "a JSON Lines file of transcripts"}}}}
    return {"requestBody": {"required": True, "content": content}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Documented error answers (always 401, 403 and 422, plus these)."""
    text = {401: "no or unknown key", 403: "role not allowed", 404: "not found or not visible to this key",
            409: "conflict", 413: "over a configured limit", 422: "bad body or parameter (names the field)"}
    return {c: {"model": ErrorBody, "description": text[c]} for c in sorted({401, 403, 422, *codes})}
