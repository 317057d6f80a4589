"""Reading transcripts from JSON Lines, JSON, CSV and STC-3 files, one result per conversation.

A conversation that fails validation becomes an `ErrorRecord` naming file, line and field;
the others are returned as `Transcript`s, in input order.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from grader.types import ErrorInfo, ErrorRecord, Transcript

Format = Literal["jsonl", "csv", "stc3"]
FORMATS: tuple[str, ...] = ("jsonl", "csv", "stc3")
STC3_SPEAKERS = {"helpdesk": "agent", "customer": "customer"}


@dataclass(frozen=True)
class Parsed:
    """One input conversation: a transcript or the error that stands in for it."""

    line: int
    item: Transcript | ErrorRecord


def field_path(loc: Iterable[Any]) -> str:
    """Dotted path of a pydantic error location (`turns.0.speaker`)."""
    return ".".join(str(p) for p in loc)


def validation_error(exc: ValidationError, raw: Any, line: int, file: str | None) -> ErrorRecord:
    """An error record for the first problem of a failed validation."""
    err = exc.errors()[0]
    path = field_path(err["loc"])
    where = f"{file}: " if file else ""
    message = f"{where}line {line}: field `{path or '(conversation)'}`: {err['msg']}"
    if len(exc.errors()) > 1:
        message += f" (and {len(exc.errors()) - 1} more)"
    conv_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), (str, int)) else None
    return ErrorRecord(id=None if conv_id is None else str(conv_id),
                       error=ErrorInfo(code="invalid_transcript", message=message, field=path or None, line=line, file=file))


def parse_transcript(raw: Any, line: int = 1, file: str | None = None, fmt: Format = "jsonl") -> Transcript | ErrorRecord:
    """Validate one decoded object as a transcript (or an STC-3 dialogue)."""
    if fmt == "stc3":
        raw = stc3_to_transcript(raw)
    if not isinstance(raw, dict):
        where = f"{file}: " if file else ""
        return ErrorRecord(id=None, error=ErrorInfo(code="invalid_transcript", line=line, file=file,
                                                     message=f"{where}line {line}: a conversation is a JSON object"))
    try:
        return Transcript.model_validate(raw)
    except ValidationError as exc:
        return validation_error(exc, raw, line, file)


def stc3_to_transcript(raw: Any) -> Any:
    """An STC-3 dialogue as a transcript dict: utterances joined by newlines, helpdesk is agent."""
    if not isinstance(raw, dict) or not isinstance(raw.get("turns"), list):
        return raw
    turns = []
    for t in raw["turns"]:
        if not isinstance(t, dict):
            turns.append(t)
            continue
        utterances = t.get("utterances")
        text = "\n".join(u for u in utterances if isinstance(u, str)) if isinstance(utterances, list) else utterances
        turns.append({"speaker": STC3_SPEAKERS.get(t.get("sender"), t.get("sender")), "text": text})
    return {"id": raw.get("id"), "channel": "weibo", "turns": turns, "metadata": {"source": "stc3"}}


def is_stc3(obj: Any) -> bool:
    """True when a decoded object is an STC-3 dialogue (turns with sender/utterances)."""
    turns = obj.get("turns") if isinstance(obj, dict) else None
    return bool(turns) and isinstance(turns[0], dict) and ("sender" in turns[0] or "utterances" in turns[0])


def detect_format(path: Path) -> Format:
    """csv by extension; otherwise stc3 when the first object has sender/utterances turns."""
    if path.suffix.lower() == ".csv":
        return "csv"
    with path.open(encoding="utf-8-sig") as fh:
        head = fh.read(1 << 16)
    stripped = head.lstrip()
    candidates = [stripped] if stripped.startswith("[") else stripped.splitlines()[:5]
    for text in candidates:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            continue
        obj = obj[0] if isinstance(obj, list) and obj else obj
        return "stc3" if is_stc3(obj) else "jsonl"
    return "jsonl"


def _read_json_lines(path: Path, fmt: Format) -> Iterator[Parsed]:
    with path.open(encoding="utf-8-sig") as fh:
        text = fh.read()
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Parsed(exc.lineno, ErrorRecord(id=None, error=ErrorInfo(code="bad_json", line=exc.lineno, file=str(path),
                                                                            message=f"{path}: line {exc.lineno}: {exc.msg}")))
            return
        for n, obj in enumerate(items, 1):
            yield Parsed(n, parse_transcript(obj, n, str(path), fmt))
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Parsed(n, ErrorRecord(id=None, error=ErrorInfo(code="bad_json", line=n, file=str(path),
                                                               message=f"{path}: line {n}: not valid JSON: {exc.msg}")))
            continue
        yield Parsed(n, parse_transcript(obj, n, str(path), fmt))


def _number(value: str) -> float | str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return value  # let validation name the field


def _read_csv(path: Path) -> Iterator[Parsed]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"id", "speaker", "text"} - set(reader.fieldnames or [])
        if missing:
            yield Parsed(1, ErrorRecord(id=None, error=ErrorInfo(code="bad_csv", line=1, file=str(path), field=sorted(missing)[0],
                                                               message=f"{path}: line 1: header lacks column(s) {sorted(missing)}")))
            return
        convs: dict[str, dict] = {}
        for row in reader:
            conv_id = (row.get("id") or "").strip()
            conv = convs.setdefault(conv_id, {"line": reader.line_num, "raw": {"id": conv_id, "turns": []}})
            for key in ("channel", "agent_id", "started_at"):
                if row.get(key):
                    conv["raw"][key] = row[key]
            turn = {"speaker": (row.get("speaker") or "").strip(), "text": row.get("text") or ""}
            for key in ("start", "end"):
                if _number(row.get(key, "")) is not None:
                    turn[key] = _number(row[key])
            conv["raw"]["turns"].append(turn)
    for conv in convs.values():
        yield Parsed(conv["line"], parse_transcript(conv["raw"], conv["line"], str(path)))


def read_file(path: str | Path, fmt: Format | None = None) -> Iterator[Parsed]:
    """Every conversation of one file; raises OSError when the file cannot be opened."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        yield from _read_csv(path)
    else:
        yield from _read_json_lines(path, fmt)


def read_files(paths: Iterable[str | Path], fmt: Format | None = None) -> Iterator[Parsed]:
    """Conversations of several files in order; a repeated id becomes an error record."""
    seen: set[str] = set()
    for path in paths:
        for parsed in read_file(path, fmt):
            item = parsed.item
            if isinstance(item, Transcript):
                if item.id in seen:
                    item = ErrorRecord(id=item.id, error=ErrorInfo(
                        code="duplicate_id", field="id", line=parsed.line, file=str(path),
                        message=f"{path}: line {parsed.line}: field `id`: {item.id!r} already appears in this batch"))
                    parsed = Parsed(parsed.line, item)
                else:
                    seen.add(item.id)
            yield parsed
