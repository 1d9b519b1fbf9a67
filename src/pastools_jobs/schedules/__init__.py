"""Recurring jobs of a project, stored as Temporal Schedules: no table of our own, so the
Temporal UI's Schedules page and `temporal schedule list` show exactly what the API does."""
