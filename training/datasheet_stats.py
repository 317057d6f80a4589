"""Variety figures of the written behavior data, for the datasheet.

    python -m training.datasheet_stats [data/behaviors/written]
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import Counter
from pathlib import Path

from grader.labels import read_written

_CLAUSE = re.compile(r"[，。！？!?,.~～、\s]")


def first_clause(text: str) -> str:
    """The first clause of a turn: an opening or closing formula."""
    parts = [p for p in _CLAUSE.split(text) if p]
    return parts[0] if parts else ""


def stats(folder: Path) -> dict:
    convs = [c for f in sorted(folder.glob("*.jsonl")) for c in read_written(f)]
    agent_texts = [c.transcript.turns[i].text for c in convs for i in c.labels]
    openings = Counter(first_clause(c.transcript.turns[i].text) for c in convs for i in c.labels
                       if "greeting" in c.labels[i] and i == min(c.labels))
    closings = Counter(first_clause(c.transcript.turns[i].text) for c in convs for i in c.labels if "closing" in c.labels[i])
    lengths = sorted(len(t) for t in agent_texts)
    q = statistics.quantiles(lengths, n=10)
    return {
        "conversations": len(convs), "agent_turns": len(agent_texts),
        "distinct_agent_turn_share": len(set(agent_texts)) / len(agent_texts),
        "distinct_openings": len(openings), "distinct_closings": len(closings),
        "length_chars": {"min": lengths[0], "p10": q[0], "median": statistics.median(lengths), "p90": q[-1], "max": lengths[-1],
                         "mean": round(statistics.mean(lengths), 1)},
        "agent_turns_per_conversation": round(len(agent_texts) / len(convs), 2),
        "industries": dict(Counter(c.transcript.metadata.get("industry") for c in convs)),
        "channels": dict(Counter(c.transcript.channel for c in convs)),
        "styles": dict(Counter(c.transcript.metadata.get("style") for c in convs)),
        "splits": dict(Counter(c.split for c in convs)),
        "top_openings": openings.most_common(5), "top_closings": closings.most_common(5),
    }


if __name__ == "__main__":
    for key, value in stats(Path(sys.argv[1] if len(sys.argv) > 1 else "data/behaviors/written")).items():
        print(f"{key}: {value}")
