"""Behavior label files (`contracts.md`, Label files): STC-3 turn labels and written transcripts.

Pure reading and checking; no torch. Each labeled agent turn becomes a `LabeledTurn` with its
text, the preceding customer text and its position, so training, evaluation and the data
check see exactly the same examples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from grader.codebook import BEHAVIORS
from grader.readers import read_file
from grader.types import Transcript

STC3_LABELS = "stc3_labels.jsonl"


@dataclass(frozen=True)
class LabeledTurn:
    conversation: str
    turn: int
    text: str
    context: str
    position: tuple[float, float, float]  # first agent turn, last agent turn, relative position
    labels: tuple[str, ...]
    split: str
    source: str


def turn_context(t: Transcript, index: int) -> str:
    """The text of the nearest customer turn before `index` (empty when none)."""
    for j in range(index - 1, -1, -1):
        if t.turns[j].speaker == "customer":
            return t.turns[j].text
    return ""


def turn_position(t: Transcript, index: int) -> tuple[float, float, float]:
    """(is first agent turn, is last agent turn, index / number of turns)."""
    agents = t.agent_turn_indices()
    return (float(index == agents[0]), float(index == agents[-1]), index / max(1, len(t.turns) - 1))


def stc3_transcripts(path: Path) -> dict[str, Transcript]:
    """STC-3 dialogues by id, read through the transcript reader."""
    return {p.item.id: p.item for p in read_file(path, "stc3") if isinstance(p.item, Transcript)}


@dataclass(frozen=True)
class LabeledConversation:
    transcript: Transcript
    labels: dict[int, tuple[str, ...]]  # agent turn index -> labels
    split: str
    source: str

    def turns(self) -> list[LabeledTurn]:
        t = self.transcript
        return [LabeledTurn(t.id, i, t.turns[i].text, turn_context(t, i), turn_position(t, i), self.labels[i], self.split, self.source)
                for i in sorted(self.labels)]


def read_stc3_labels(labels_path: Path, stc3_train: Path) -> list[LabeledConversation]:
    """Conversations of `stc3_labels.jsonl`, with their text taken from STC-3 `train.jsonl`."""
    dialogues = stc3_transcripts(stc3_train)
    grouped: dict[str, dict] = {}
    for line in labels_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            entry = grouped.setdefault(row["id"], {"labels": {}, "split": row.get("split", "train")})
            entry["labels"][row["turn"]] = tuple(row["labels"])
    return [LabeledConversation(dialogues[cid], e["labels"], e["split"], "stc3") for cid, e in grouped.items()]


def read_written(path: Path) -> list[LabeledConversation]:
    """Conversations of a written-data file; an invalid line raises ValueError."""
    out = []
    for parsed in read_file(path, "jsonl"):
        if not isinstance(parsed.item, Transcript):
            raise ValueError(parsed.item.error.message)
        t = parsed.item
        labels = {i: tuple(t.turns[i].labels or ()) for i in t.agent_turn_indices() if t.turns[i].labels is not None}
        out.append(LabeledConversation(t, labels, t.split or "train", path.stem))
    return out


def default_stc3_train(root: Path | None = None) -> Path:
    """`../shared/data/stc3/train.jsonl` beside the repository."""
    root = root or Path(__file__).resolve().parents[1]
    return root.parent / "shared" / "data" / "stc3" / "train.jsonl"


def label_files(paths: list[Path]) -> list[Path]:
    """The .jsonl files under the given files or folders."""
    files: list[Path] = []
    for p in paths:
        files += sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
    return files


def load_labeled_conversations(paths: list[Path], stc3_train: Path | None = None) -> list[LabeledConversation]:
    """Every labeled conversation under the given files or folders (STC-3 labels only where its text exists)."""
    stc3_train = stc3_train or default_stc3_train()
    out: list[LabeledConversation] = []
    for f in label_files(paths):
        if f.name == STC3_LABELS or _looks_like_stc3_labels(f):
            if stc3_train.is_file():
                out += read_stc3_labels(f, stc3_train)
        else:
            out += read_written(f)
    return out


def load_labeled_turns(paths: list[Path], stc3_train: Path | None = None) -> list[LabeledTurn]:
    """Every labeled agent turn under the given files or folders."""
    return [t for c in load_labeled_conversations(paths, stc3_train) for t in c.turns()]


def _looks_like_stc3_labels(path: Path) -> bool:
    with path.open(encoding="utf-8") as fh:
        first = fh.readline()
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and "turn" in row and "labels" in row and "turns" not in row


def label_matrix(turns: list[LabeledTurn]) -> list[list[int]]:
    """Multi-hot rows in codebook order."""
    return [[int(b in t.labels) for b in BEHAVIORS] for t in turns]
