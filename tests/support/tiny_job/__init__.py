"""A job type from a package of its own, as a team would add one: parameters and result
models with the spec (`spec.py`, all the API loads), one workflow module, one activity
module, and one entry point naming the spec (`tests/integration/test_new_job_type.py`
installs it)."""
