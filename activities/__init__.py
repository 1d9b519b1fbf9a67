"""The work of the jobs: I/O and computation, run by the worker, reporting by heartbeat."""
