"""The audit trail: who did what to which job or project, through what, and why."""
