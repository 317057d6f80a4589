"""The grading engine as the service shares it between request threads and the job worker."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from grader.engine import Grader
from grader.rubric.schema import Rubric
from grader.types import ErrorRecord, Grade, Transcript


class GradingRunner:
    """Serialises calls into one engine: taggers and lazily-loaded tokenisers are not
    guaranteed to be thread-safe, and one batch at a time uses the CPU as well as many."""

    def __init__(self, engine: Grader):
        self.engine = engine
        self._lock = threading.Lock()

    @property
    def rubric(self) -> Rubric:
        return self.engine.rubric

    def load(self) -> None:
        with self._lock:
            self.engine.load()

    def model_info(self) -> dict[str, str]:
        return self.engine.model_info()

    def grade(self, items: Sequence[Transcript | ErrorRecord]) -> list[Grade | ErrorRecord]:
        """Grades in input order; error records pass through, a failing conversation becomes one."""
        with self._lock:
            return list(self.engine.grade_stream(items, batch_size=32))
