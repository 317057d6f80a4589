"""Rubric files: schema, loading, conditions over rule hits and behaviors."""

from grader.rubric.schema import Rubric, load_rubric, RubricError

__all__ = ["Rubric", "load_rubric", "RubricError"]
