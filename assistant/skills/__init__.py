"""Deterministic skills: one module each, answering a recognised intent without a model."""
