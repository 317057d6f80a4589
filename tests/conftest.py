"""Shared fixtures: paths to the shipped rubric, the examples and ../shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.behaviors.lexicon import LexiconTagger
from grader.engine import Grader
from grader.rubric.schema import default_rubric_path, load_rubric
from grader.types import Transcript

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
STC3_DIR = SHARED / "data" / "stc3"
EXAMPLES = ROOT / "examples" / "transcripts.jsonl"


@pytest.fixture(scope="session")
def rubric():
    return load_rubric(default_rubric_path())


@pytest.fixture(scope="session")
def lexicon_grader(rubric):
    engine = Grader(rubric, LexiconTagger())
    engine.load()
    return engine


@pytest.fixture
def stc3_dir():
    if not (STC3_DIR / "test.jsonl").is_file():
        pytest.skip(f"STC-3 data not found at {STC3_DIR} (../shared is absent on this machine)")
    return STC3_DIR


def make_transcript(*turns, **extra) -> Transcript:
    """A transcript from (speaker, text) or (speaker, text, start, end) tuples."""
    out = []
    for t in turns:
        turn = {"speaker": t[0], "text": t[1]}
        if len(t) == 4:
            turn.update(start=t[2], end=t[3])
        out.append(turn)
    return Transcript.model_validate({"id": extra.pop("id", "t-1"), "turns": out, **extra})
