"""`grader evaluate`: a tagger against labeled turns, as JSON and Markdown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.behaviors.base import BehaviorTagger
from grader.codebook import BEHAVIORS
from grader.labels import LabeledConversation, load_labeled_conversations
from training.metrics import evaluate_predictions


def gold_and_probs(tagger: BehaviorTagger, convs: list[LabeledConversation]) -> tuple[np.ndarray, np.ndarray]:
    """Gold multi-hot rows and the tagger's probabilities for every labeled agent turn."""
    scores = tagger.predict([c.transcript for c in convs])
    gold, probs = [], []
    for conv, turn_scores in zip(convs, scores):
        for i in sorted(conv.labels):
            gold.append([int(b in conv.labels[i]) for b in BEHAVIORS])
            probs.append([turn_scores.get(i, {}).get(b, 0.0) for b in BEHAVIORS])
    return np.array(gold, dtype=int).reshape(-1, len(BEHAVIORS)), np.array(probs, dtype=float).reshape(-1, len(BEHAVIORS))


def evaluate_tagger(tagger: BehaviorTagger, labels: list[Path], split: str | None = "dev", source: str | None = None) -> dict:
    """The evaluation report of one tagger on the labeled turns of `split` (all splits when None)."""
    convs = [c for c in load_labeled_conversations(labels)
             if (split is None or c.split == split) and (source is None or c.source == source)]
    if not convs:
        raise ValueError(f"no labeled conversations for split={split!r} source={source!r} under {labels}")
    gold, probs = gold_and_probs(tagger, convs)
    thresholds = np.array([tagger.thresholds[b] for b in BEHAVIORS])
    report = evaluate_predictions(gold, probs, thresholds, list(BEHAVIORS))
    report.update(tagger={"name": tagger.name, "version": tagger.version}, split=split, source=source)
    return report
