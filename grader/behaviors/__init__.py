"""Behavior taggers: per-agent-turn probabilities for each codebook behavior."""

from grader.behaviors.base import BehaviorCheck, BehaviorTagger, TurnScores

__all__ = ["BehaviorCheck", "BehaviorTagger", "TurnScores"]
