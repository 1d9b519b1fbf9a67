"""Orchestration of the jobs: deterministic Temporal workflow code only."""
