"""Pure functions over transcripts shared by rules, models and training."""
