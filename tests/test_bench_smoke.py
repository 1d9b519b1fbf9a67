"""The platform benchmarks still run: `python -m bench --size small` completes and its
table has a row for every benchmark.

No timing is asserted: numbers on a shared 2-core machine say nothing about a change,
and the benchmarks' targets are for the full size (see bench/README.md). What this
guards is the harness itself against changes to the API, the worker or the schema.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parent.parent
EXPECTED_BENCHMARKS = [
    "1 throughput",
    "2 submit latency",
    "3a mirror lag",
    "3b mirror lag",
    "4 cancel latency",
    "5 queries",
    "6 memory",
    "7 metrics cost",
    "9 job logs",
    "10 fair shares",
]
HEADER = "| benchmark | metric | platform | baseline | ratio | target | result |"


def table_rows(output: str) -> list[list[str]]:
    """The cells of each row of the main table (the first one printed)."""
    lines = output.splitlines()
    start = lines.index(HEADER)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


@pytest.mark.timeout(240)
def test_small_run_prints_a_row_for_every_benchmark() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "small"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = table_rows(result.stdout)
    for name in EXPECTED_BENCHMARKS:
        assert any(row[0] == name for row in rows), f"no row for {name}:\n{result.stdout}"
    for row in rows:
        assert len(row) == len(HEADER.strip("|").split("|")), row
        assert row[2] not in ("nan", "inf", ""), row
    assert "### Query plans of the hot paths" in result.stdout
