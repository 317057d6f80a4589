"""Serialising results to the JSON shapes of `contracts.md`."""

from __future__ import annotations

import json
from typing import Any

from grader.types import ErrorRecord, Grade


def result_dict(result: Grade | ErrorRecord) -> dict[str, Any]:
    """The contract's JSON object for a grade or an error record."""
    if isinstance(result, ErrorRecord):
        return {"id": result.id, "error": result.error.model_dump(exclude_none=True)}
    return result.model_dump(mode="json", exclude_none=True)


def result_line(result: Grade | ErrorRecord) -> str:
    """One JSON Lines line (no trailing newline)."""
    return json.dumps(result_dict(result), ensure_ascii=False)
