"""The dataset benchmark runs end to end on a tiny size (its figures are not judged here)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_dataset_benchmark_prints_every_row() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.datasets", "--rows", "3000", "--backend", "sqlite"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    for benchmark in ("import rows/s", "export rows/s", "validation records/s"):
        assert f"| {benchmark} | sqlite |" in finished.stdout, finished.stdout
