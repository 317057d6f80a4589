"""`grader train-quality`: learn conversation-level quality dimensions (draft: data layer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from grader.readers import _is_stc3, parse_transcript
from grader.types import ErrorRecord

SCALE = (2, 1, 0, -1, -2)
SCALE_KEYS = tuple(str(v) for v in SCALE)


def label_distribution(value: Any, where: str) -> np.ndarray:
    """One dimension's labels as a distribution over SCALE (2 .. -2).

    `value` is one gold label (`1`), several annotators' labels (`[1, 0, 1]`) or a
    distribution keyed by scale point (`{"2": 0.1, "1": 0.5, ...}`, renormalised).
    """
    dist = np.zeros(len(SCALE), dtype=np.float64)
    if isinstance(value, dict):
        for key, p in value.items():
            if str(key).strip() not in SCALE_KEYS:
                raise ValueError(f"{where}: scale point {key!r} is not one of {', '.join(SCALE_KEYS)}")
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not np.isfinite(p) or p < 0:
                raise ValueError(f"{where}: probability of {key!r} must be a number >= 0, not {p!r}")
            dist[SCALE_KEYS.index(str(key).strip())] += float(p)
    else:
        labels = value if isinstance(value, list) else [value]
        for label in labels:
            if isinstance(label, bool) or not isinstance(label, (int, float)) or label not in SCALE:
                raise ValueError(f"{where}: label {label!r} is not on the scale {', '.join(SCALE_KEYS)}")
            dist[SCALE.index(int(label))] += 1.0
    if dist.sum() <= 0:
        raise ValueError(f"{where}: no labels")
    return dist / dist.sum()


def _stc3_labels(raw: dict, where: str) -> dict[str, np.ndarray]:
    annotations = raw.get("annotations")
    if not isinstance(annotations, list) or not annotations:
        return {}
    dims: dict[str, list] = {}
    for a in annotations:
        for dim, label in ((a or {}).get("quality") or {}).items():
            dims.setdefault(str(dim), []).append(label)
    return {dim: label_distribution(labels, f"{where}: annotations, dimension {dim}") for dim, labels in dims.items()}


def _jsonl_labels(raw: dict, where: str) -> dict[str, np.ndarray]:
    quality = raw.get("quality")
    if quality is None:
        return {}
    if not isinstance(quality, dict):
        raise ValueError(f"{where}: field `quality` must be an object of dimension -> labels")
    return {str(dim): label_distribution(v, f"{where}: field `quality.{dim}`") for dim, v in quality.items()}


def read_labeled(path: str | Path, fmt: str | None = None) -> tuple[list[dict], int]:
    """Labeled conversations of one file: ([{id, transcript, labels}], number without labels).

    `fmt` is `stc3` or `jsonl` (default: detected from the first conversation). An invalid
    transcript or label raises ValueError naming the line and field.
    """
    path = Path(path)
    records, unlabeled = [], 0
    with path.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}: line {n}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON: {exc.msg}") from None
            fmt = fmt or ("stc3" if _is_stc3(raw) else "jsonl")
            transcript = parse_transcript(raw, n, str(path), fmt)  # type: ignore[arg-type]
            if isinstance(transcript, ErrorRecord):
                raise ValueError(transcript.error.message)
            labels = (_stc3_labels if fmt == "stc3" else _jsonl_labels)(raw, where)
            if not labels:
                unlabeled += 1
                continue
            records.append({"id": transcript.id, "transcript": transcript, "labels": labels})
    return records, unlabeled
