"""Deterministic checks, one module per rule family."""
