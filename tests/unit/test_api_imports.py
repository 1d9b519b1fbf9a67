"""The API builds its request models from the job types' specs, not from their workflows:
importing it must not load the work's code (pyarrow, the activities and their SQL), which
only the worker runs."""

import json
import os
import subprocess
import sys

_LOADED = (
    "import json, sys, pastools_jobs.api.app; "
    "print(json.dumps([name for name in sys.modules "
    "if name.split('.')[0] in ('pyarrow', 'activities')]))"
)


def test_importing_the_api_loads_no_activity_code() -> None:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    done = subprocess.run(
        [sys.executable, "-c", _LOADED], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(done.stdout) == []
