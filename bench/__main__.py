"""`python -m bench [--size small|full] [--only NAME]`: benchmarks of the platform itself.

Every benchmark measures the platform and its baseline in the same run, on the same
services, and the run prints one Markdown table of both with their ratio and the
issue's target, followed by the query plans of the hot paths.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import (
    cancel_latency,
    fair_shares,
    job_logs,
    memory_peaks,
    mirror_lag,
    param_search,
    queries,
    submit_latency,
    throughput,
)
from bench.core import Report, Size, markdown_table
from bench.environment import BenchEnv
from bench.machine import describe_machine

Benchmark = Callable[[BenchEnv, Report], Awaitable[None]]

BENCHMARKS: dict[str, Benchmark] = {
    "throughput": throughput.run,
    "submit": submit_latency.run,
    "mirror": mirror_lag.run,
    "cancel": cancel_latency.run,
    "queries": queries.run,
    "memory": memory_peaks.run,
    "metrics": throughput.run_metrics,
    "params": param_search.run,
    "logs": job_logs.run,
    "fairness": fair_shares.run,
}
"""In the order they run: memory reuses the throughput run when both are selected."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--size",
        choices=[s.value for s in Size],
        default=Size.FULL.value,
        help="full: the issue's sizes (~6 min); small: every benchmark in under a minute",
    )
    parser.add_argument("--only", choices=list(BENCHMARKS), help="run this benchmark alone")
    return parser.parse_args(argv)


async def run_all(size: Size, names: list[str], workdir: Path) -> Report:
    report = Report()
    env = BenchEnv(size, workdir)
    try:
        for name in names:
            started = time.monotonic()
            await BENCHMARKS[name](env, report)
            print(f"{name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        env.close()
    return report


def render(report: Report, size: Size, seconds: float, load: tuple[float, float]) -> str:
    """The table, then the sections. The load averages say whether the machine was shared."""
    parts = [
        f"Size `{size.value}`, {seconds:.0f} s in all. {describe_machine()} "
        f"1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end.",
        markdown_table(report.rows),
        *(f"### {title}\n\n{body}" for title, body in report.sections.items()),
    ]
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    size = Size(args.size)
    names = [args.only] if args.only else list(BENCHMARKS)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="pastools-bench-") as workdir:
        report = asyncio.run(run_all(size, names, Path(workdir)))
    seconds = time.monotonic() - started
    print(render(report, size, seconds, (load_before, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
