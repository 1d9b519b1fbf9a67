"""Persistence of the jobs table: models, engine and sessions."""
