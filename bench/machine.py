"""The machine a table was measured on: numbers from another machine are not comparable."""

import os
import platform
from datetime import UTC, datetime
from pathlib import Path


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def describe_machine() -> str:
    """`nproc`, memory, CPU model, Python version and date, as one sentence."""
    cores = len(os.sched_getaffinity(0))
    return (
        f"Machine: nproc {cores}, {_memory_gib():.1f} GiB memory, CPU {_cpu_model()}, "
        f"Python {platform.python_version()}, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}."
    )
