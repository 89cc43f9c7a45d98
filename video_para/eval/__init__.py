"""Evaluation: OOD protocols (which scenes train, which test), rollouts, reports."""
