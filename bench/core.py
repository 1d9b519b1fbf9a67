"""What every benchmark shares: sizes, result rows with their targets, the Markdown table.

Each benchmark returns rows that carry the platform's number, the baseline's number
measured in the same run, and the target from the issue, so that the table alone says
whether a target was met.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Size(StrEnum):
    """`small` proves every benchmark runs (the smoke test); `full` is the real measure."""

    SMALL = "small"
    FULL = "full"


@dataclass(frozen=True)
class Target:
    """A target of the issue: its wording and how to check a (platform, baseline) pair."""

    text: str
    check: Callable[[float, float | None], bool]


def ratio_at_least(factor: float) -> Target:
    return Target(f"≥ {factor:g}x baseline", lambda p, b: b is not None and p >= factor * b)


def ratio_at_most(factor: float) -> Target:
    return Target(f"≤ {factor:g}x baseline", lambda p, b: b is not None and p <= factor * b)


def below(limit: float, unit: str) -> Target:
    return Target(f"< {limit:g} {unit}", lambda p, _b: p < limit)


def at_most(limit: float, unit: str) -> Target:
    return Target(f"≤ {limit:g} {unit}", lambda p, _b: p <= limit)


@dataclass(frozen=True)
class Row:
    """One line of the table. `baseline` is None where no baseline applies."""

    benchmark: str
    metric: str
    unit: str
    platform: float
    baseline: float | None
    baseline_name: str = ""
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        """platform / baseline; undefined when a lag is zero or negative (table ahead)."""
        if self.baseline is None or self.baseline <= 0 or self.platform <= 0:
            return None
        return self.platform / self.baseline

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "—"
        return "met" if self.target.check(self.platform, self.baseline) else "**missed**"

    def cells(self) -> list[str]:
        baseline = "—"
        if self.baseline is not None:
            baseline = f"{number(self.baseline)} ({self.baseline_name})"
        ratio = (
            "—"
            if self.ratio is None
            else f"{self.ratio:.2g}"
            if self.ratio < 0.1
            else f"{self.ratio:.2f}"
        )
        return [
            self.benchmark,
            f"{self.metric} ({self.unit})",
            number(self.platform),
            baseline,
            ratio,
            self.target.text if self.target else "—",
            self.verdict,
        ]


@dataclass
class Report:
    """The rows of a run, plus free-form sections (query plans) printed after the table."""

    rows: list[Row] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)


HEADER = ["benchmark", "metric", "platform", "baseline", "ratio", "target", "result"]


def number(value: float) -> str:
    """Three significant digits are all a benchmark on a shared machine can claim."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|---|---|--:|--:|--:|---|---|",
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
    ]
    return "\n".join(lines)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: p99 of 200 samples is the 198th, an observed value."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latency_rows(
    benchmark: str,
    metric: str,
    platform_ms: Sequence[float],
    baseline_ms: Sequence[float] | None,
    baseline_name: str,
    targets: dict[str, Target] | None = None,
) -> list[Row]:
    """A p50 and a p99 row for a pair of latency samples (milliseconds)."""
    rows = []
    for label, fraction in (("p50", 0.50), ("p99", 0.99)):
        base = None if baseline_ms is None else percentile(baseline_ms, fraction)
        rows.append(
            Row(
                benchmark,
                f"{metric} {label}, n={len(platform_ms)}",
                "ms",
                percentile(platform_ms, fraction),
                base,
                baseline_name,
                (targets or {}).get(label),
            )
        )
    return rows
