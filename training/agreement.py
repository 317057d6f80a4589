"""Inter-annotator agreement between two label passes over the same turns (for the datasheet).

    python -m training.agreement FIRST SECOND

FIRST/SECOND: files of lines `{"id", "turn", "labels"}`, or written-data transcript files
or folders (labels read from their agent turns).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

from grader.codebook import BEHAVIORS
from grader.labels import read_written


def read_pass(path: Path) -> dict[tuple[str, int], set[str]]:
    """(id, turn) -> labels, from a turn-label file or a folder of written transcripts."""
    rows = [] if path.is_dir() else [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.is_dir() or (rows and "turns" in rows[0]):
        files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        return {(c.transcript.id, i): set(labels) for f in files for c in read_written(f) for i, labels in c.labels.items()}
    return {(r["id"], r["turn"]): set(r["labels"]) for r in rows}


def agreement(first: dict, second: dict) -> dict[str, dict]:
    """Per behavior: positives in each pass, raw agreement and Cohen's kappa over the shared turns."""
    keys = sorted(set(first) & set(second))
    out = {}
    for b in BEHAVIORS:
        a = [b in first[k] for k in keys]
        c = [b in second[k] for k in keys]
        both_constant = len(set(a) | set(c)) < 2
        out[b] = {"n": len(keys), "first": sum(a), "second": sum(c),
                  "agreement": sum(x == y for x, y in zip(a, c)) / len(keys),
                  "kappa": None if both_constant else float(cohen_kappa_score(a, c))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Cohen's kappa per behavior between two label passes")
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args()
    report = agreement(read_pass(args.first), read_pass(args.second))
    print("| behavior | turns | pass 1 + | pass 2 + | agreement | kappa |\n|---|---|---|---|---|---|")
    for b, m in report.items():
        kappa = "-" if m["kappa"] is None else f"{m['kappa']:.3f}"
        print(f"| {b} | {m['n']} | {m['first']} | {m['second']} | {m['agreement']:.3f} | {kappa} |")


if __name__ == "__main__":
    main()
