"""Multi-label evaluation: P/R/F1/support, micro/macro F1, Cohen's kappa, confusion, ECE."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score, precision_recall_fscore_support


def expected_calibration_error(probs: np.ndarray, gold: np.ndarray, bins: int = 10) -> float:
    """ECE over every (turn, behavior) probability, equal-width bins."""
    p, y = probs.ravel(), gold.ravel()
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if inside.any():
            total += inside.mean() * abs(p[inside].mean() - y[inside].mean())
    return float(total)


def confusion_between(gold: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict[str, dict[str, int]]:
    """confusion[a][b]: turns whose gold has a but not b, and whose prediction has b but not a."""
    out: dict[str, dict[str, int]] = {}
    for i, a in enumerate(labels):
        row = {}
        for j, b in enumerate(labels):
            if i != j:
                n = int(((gold[:, i] == 1) & (gold[:, j] == 0) & (pred[:, j] == 1) & (pred[:, i] == 0)).sum())
                if n:
                    row[b] = n
        out[a] = row
    return out


def _kappa(g: np.ndarray, p: np.ndarray) -> float | None:
    if len(set(g.tolist()) | set(p.tolist())) < 2:
        return None
    return float(cohen_kappa_score(g, p))


def evaluate_predictions(gold: np.ndarray, probs: np.ndarray, thresholds: np.ndarray, labels: list[str]) -> dict:
    """Every figure of `grader evaluate` for one tagger."""
    pred = (probs >= thresholds[None, :]).astype(int)
    p, r, f, s = precision_recall_fscore_support(gold, pred, average=None, zero_division=0)
    per = {b: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i]),
               "kappa": _kappa(gold[:, i], pred[:, i])} for i, b in enumerate(labels)}
    return {
        "n_turns": int(gold.shape[0]),
        "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0)),
        "ece": expected_calibration_error(probs, gold),
        "per_behavior": per,
        "confusion": confusion_between(gold, pred, labels),
    }


def best_threshold(probs: np.ndarray, gold: np.ndarray) -> float:
    """The threshold in 0.05..0.95 with the best F1 (ties: closest to 0.5)."""
    grid = np.round(np.arange(0.05, 0.951, 0.025), 3)
    scores = [f1_score(gold, (probs >= t).astype(int), zero_division=0) for t in grid]
    best = max(scores)
    return float(min((t for t, s in zip(grid, scores) if s >= best - 1e-9), key=lambda t: abs(t - 0.5)))


def to_markdown(report: dict, title: str) -> str:
    """A report as a Markdown table."""
    lines = [f"## {title}", "", f"turns: {report['n_turns']}; micro-F1 {report['micro_f1']:.3f}; "
             f"macro-F1 {report['macro_f1']:.3f}; ECE {report['ece']:.3f}", "",
             "| behavior | precision | recall | F1 | support | kappa |", "|---|---|---|---|---|---|"]
    for b, m in report["per_behavior"].items():
        kappa = "-" if m["kappa"] is None else f"{m['kappa']:.3f}"
        lines.append(f"| {b} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} | {kappa} |")
    top = sorted(((n, a, b) for a, row in report["confusion"].items() for b, n in row.items()), reverse=True)[:8]
    if top:
        lines += ["", "Most frequent confusions (gold → predicted instead): " +
                  "; ".join(f"{a} → {b} ({n})" for n, a, b in top)]
    return "\n".join(lines) + "\n"
