"""Checks of the behavior training data (issue: behavior training data), pure and printable."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from grader.codebook import BEHAVIORS
from grader.labels import STC3_LABELS, LabeledConversation, read_stc3_labels, read_written, stc3_transcripts

RARE = {"survey_invite": 60, "impolite": 60, "shirking": 60}
MIN_POSITIVES = 150
MIN_STC3_TURNS = 2000
MIN_WRITTEN_CONVERSATIONS = 300
MIN_WRITTEN_AGENT_TURNS = 2500
MIN_INDUSTRIES = 6
MIN_DISTINCT_SHARE = 0.95


@dataclass
class DataReport:
    problems: list[str] = field(default_factory=list)
    counts: dict[tuple[str, str], Counter] = field(default_factory=dict)  # (source, split) -> behavior counts
    turns: Counter = field(default_factory=Counter)                         # (source, split) -> agent turns
    conversations: Counter = field(default_factory=Counter)
    industries: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)
    distinct_share: float = 1.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def totals(self) -> Counter:
        total: Counter = Counter()
        for c in self.counts.values():
            total.update(c)
        return total


def _stc3_checks(path: Path, stc3_dir: Path, report: DataReport) -> list[LabeledConversation]:
    train_path, test_path = stc3_dir / "train.jsonl", stc3_dir / "test.jsonl"
    if not train_path.is_file():
        report.problems.append(f"{path}: STC-3 text not found at {train_path}; cannot check it")
        return []
    dialogues = stc3_transcripts(train_path)
    test_ids = set(stc3_transcripts(test_path)) if test_path.is_file() else set()
    seen: Counter = Counter()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        key = (row.get("id"), row.get("turn"))
        seen[key] += 1
        if row.get("id") in test_ids:
            report.problems.append(f"{path}: line {n}: id {row['id']} is an STC-3 test dialogue")
        elif row.get("id") not in dialogues:
            report.problems.append(f"{path}: line {n}: id {row.get('id')} is not in {train_path}")
        elif not 0 <= row["turn"] < len(dialogues[row["id"]].turns) or dialogues[row["id"]].turns[row["turn"]].speaker != "agent":
            report.problems.append(f"{path}: line {n}: turn {row['turn']} is not a helpdesk turn")
        bad = [b for b in row.get("labels", []) if b not in BEHAVIORS]
        if bad or "labels" not in row:
            report.problems.append(f"{path}: line {n}: labels {row.get('labels')} not codebook ids")
        if row.get("split") not in ("train", "dev", "test"):
            report.problems.append(f"{path}: line {n}: split must be train, dev or test")
    report.problems += [f"{path}: turn {k} labeled {v} times" for k, v in seen.items() if v > 1]
    convs = read_stc3_labels(path, train_path)
    for c in convs:
        missing = [i for i in c.transcript.agent_turn_indices() if i not in c.labels]
        if missing:
            report.problems.append(f"{path}: dialogue {c.transcript.id}: helpdesk turns {missing} unlabeled")
    return convs


def _written_checks(path: Path, test_ids: set[str], report: DataReport) -> list[LabeledConversation]:
    try:
        convs = read_written(path)
    except ValueError as exc:
        report.problems.append(str(exc))
        return []
    for c in convs:
        t = c.transcript
        unlabeled = [i for i in t.agent_turn_indices() if t.turns[i].labels is None]
        if unlabeled:
            report.problems.append(f"{path}: conversation {t.id}: agent turns {unlabeled} have no labels")
        if c.split not in ("train", "dev", "test"):
            report.problems.append(f"{path}: conversation {t.id}: split must be train, dev or test")
        if t.id in test_ids:
            report.problems.append(f"{path}: conversation {t.id} uses an STC-3 test id")
        report.industries[(t.metadata or {}).get("industry", "?")] += 1
        report.channels[t.channel or "?"] += 1
    return convs


def check_data(folder: Path, stc3_dir: Path) -> DataReport:
    """Validate every label file under `folder` and count labels per source and split."""
    report = DataReport()
    test_ids = set(stc3_transcripts(stc3_dir / "test.jsonl")) if (stc3_dir / "test.jsonl").is_file() else set()
    written: list[LabeledConversation] = []
    stc3: list[LabeledConversation] = []
    for path in sorted(folder.rglob("*.jsonl")):
        if path.name == STC3_LABELS:
            stc3 += _stc3_checks(path, stc3_dir, report)
        else:
            written += _written_checks(path, test_ids, report)
    ids = Counter(c.transcript.id for c in written)
    report.problems += [f"written conversation id {i} appears {n} times" for i, n in ids.items() if n > 1]
    for c in stc3 + written:
        key = ("stc3" if c.source == "stc3" else "written", c.split)
        report.conversations[key] += 1
        report.turns[key] += len(c.labels)
        report.counts.setdefault(key, Counter()).update(b for labels in c.labels.values() for b in labels)
    texts = [c.transcript.turns[i].text for c in written for i in c.labels]
    report.distinct_share = len(set(texts)) / len(texts) if texts else 1.0
    _targets(report, stc3, written)
    return report


def _targets(report: DataReport, stc3: list, written: list) -> None:
    n_stc3 = sum(len(c.labels) for c in stc3)
    n_written = sum(len(c.labels) for c in written)
    checks = [
        (n_stc3 >= MIN_STC3_TURNS, f"STC-3 labeled turns {n_stc3} < {MIN_STC3_TURNS}"),
        (len(written) >= MIN_WRITTEN_CONVERSATIONS, f"written conversations {len(written)} < {MIN_WRITTEN_CONVERSATIONS}"),
        (n_written >= MIN_WRITTEN_AGENT_TURNS, f"written agent turns {n_written} < {MIN_WRITTEN_AGENT_TURNS}"),
        (len(report.industries) >= MIN_INDUSTRIES, f"industries {len(report.industries)} < {MIN_INDUSTRIES}"),
        (report.distinct_share >= MIN_DISTINCT_SHARE, f"distinct agent-turn texts {report.distinct_share:.1%} < 95%"),
    ]
    totals = report.totals()
    for b in BEHAVIORS:
        need = RARE.get(b, MIN_POSITIVES)
        checks.append((totals[b] >= need, f"behavior {b}: {totals[b]} positive turns < {need}"))
    report.problems += [msg for ok, msg in checks if not ok]
