"""Per-job logs: what a job's activities log at INFO and above, captured in the worker
(`capture.py`), kept per job up to a cap and read back by the API (`store.py`)."""
