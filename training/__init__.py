"""Training and evaluation of the grader's models (imports torch lazily)."""
