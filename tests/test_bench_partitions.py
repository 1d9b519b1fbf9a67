"""The partitions benchmark runs end to end on a tiny size (its figures are not judged
here): three partitions with one worker, then with two, the same result."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_partitions_benchmark_prints_both_runs() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.partitions", "--rows", "3000", "--partition-rows", "1000"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "3,000 records, 3 partitions, sqlite" in finished.stdout, finished.stdout
    for workers in ("| 1 |", "| 2 |"):
        assert workers in finished.stdout, finished.stdout
