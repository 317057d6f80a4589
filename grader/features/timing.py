"""Latencies, gaps, overlaps and talk time of timed transcripts (pure functions)."""

from __future__ import annotations

from grader.types import Transcript


def agent_replies(t: Transcript) -> list[tuple[int, int, float]]:
    """(customer turn, next agent turn, latency s) for each agent turn that answers a customer turn."""
    out = []
    for i in range(1, len(t.turns)):
        prev, cur = t.turns[i - 1], t.turns[i]
        if cur.speaker == "agent" and prev.speaker == "customer":
            out.append((i - 1, i, max(0.0, cur.start - prev.end)))
    return out


def gaps(t: Transcript) -> list[tuple[int, int, float]]:
    """(turn, next turn, silence s) between consecutive turns."""
    return [(i - 1, i, t.turns[i].start - t.turns[i - 1].end) for i in range(1, len(t.turns))
            if t.turns[i].start > t.turns[i - 1].end]


def overlaps(t: Transcript) -> list[tuple[int, int, float]]:
    """(customer turn, agent turn, overlap s) where the agent starts before the customer ends."""
    return [(i - 1, i, t.turns[i - 1].end - t.turns[i].start) for i in range(1, len(t.turns))
            if t.turns[i].speaker == "agent" and t.turns[i - 1].speaker == "customer" and t.turns[i].start < t.turns[i - 1].end]


def talk_time(t: Transcript, speaker: str) -> float:
    """Seconds spoken by `speaker`."""
    return sum(turn.end - turn.start for turn in t.turns if turn.speaker == speaker)


def speech_rate(t: Transcript) -> list[tuple[int, float]]:
    """(agent turn, characters per second) for agent turns of at least one second."""
    return [(i, len(turn.text) / (turn.end - turn.start)) for i, turn in enumerate(t.turns)
            if turn.speaker == "agent" and turn.end - turn.start >= 1.0]
