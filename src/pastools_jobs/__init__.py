"""PAStools Jobs: background jobs as Temporal workflows, mirrored into a jobs table."""
