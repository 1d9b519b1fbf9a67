"""Keeps the jobs table equal to Temporal's view of each job, whoever acted."""
