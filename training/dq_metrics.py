"""STC-3 dialogue-quality measures: NMD and RSNOD, exactly as `shared/data/stc3/README.md`
defines them. Pure numpy; both compare predicted with annotators' distributions over the
ordered scale (any consistent order of the L bins), lower is better.

- NMD, normalised match distance: sum over the bins of |cum(p) - cum(q)|, divided by L - 1.
- RSNOD (Sakai, SIGIR 2018): DW_i = sum_j |i - j| (p_j - q_j)^2; OD(p || q) is the mean of
  DW_i over the bins i where q_i > 0; RSNOD = sqrt((OD(p || q) + OD(q || p)) / 2 / (L - 1)),
  with p the prediction and q the annotators' distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["mean_scores", "nmd", "od", "rsnod", "score_table"]


def _pair(p: np.ndarray | Sequence, q: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.ndim == 0 or p.shape[-1] < 2:
        raise ValueError(f"distributions must have the same shape (..., L >= 2), got {p.shape} and {q.shape}")
    return p, q


def nmd(p, q) -> np.ndarray:
    """Normalised match distance per distribution (the last axis holds the L bins)."""
    p, q = _pair(p, q)
    diff = np.abs(np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1)).sum(axis=-1)
    return diff / (p.shape[-1] - 1)


def od(p, q) -> np.ndarray:
    """Order-aware divergence OD(p || q): mean of DW_i over the bins where q_i > 0."""
    p, q = _pair(p, q)
    n_bins = p.shape[-1]
    distance = np.abs(np.arange(n_bins)[:, None] - np.arange(n_bins)[None, :])  # |i - j|
    dw = ((p - q) ** 2) @ distance  # DW_i = sum_j |i - j| (p_j - q_j)^2, the matrix is symmetric
    support = q > 0
    return (dw * support).sum(axis=-1) / np.maximum(support.sum(axis=-1), 1)


def rsnod(p, q) -> np.ndarray:
    """Root symmetric normalised order-aware divergence, p the prediction, q the reference."""
    p, q = _pair(p, q)
    return np.sqrt((od(p, q) + od(q, p)) / 2 / (p.shape[-1] - 1))


def mean_scores(pred, gold) -> dict[str, float]:
    """Mean NMD and RSNOD over dialogues (arrays of shape (N, L))."""
    return {"nmd": float(np.mean(nmd(pred, gold))), "rsnod": float(np.mean(rsnod(pred, gold)))}


def score_table(pred: Mapping[str, np.ndarray], gold: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per dimension: mean NMD and RSNOD of `pred[dim]` against `gold[dim]`."""
    return {dim: mean_scores(pred[dim], gold[dim]) for dim in gold}
