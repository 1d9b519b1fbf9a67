"""Benchmark 8: finding jobs by their parameters in a PostgreSQL table of a million.

The table of benchmark 5 (`bench.scale_data`), loaded at the schema before parameters
were indexed and then migrated, so that the migration's own time on it is measured. An
API (mirror off) answers, over HTTP and one request at a time: an equality on a common
parameter value (`param.format=…`, a tenth of the jobs), a prefix (`param.source=uploads/
<month>/*`, a fiftieth), a single file (a handful of jobs) and an equality within the
largest project; each on its first page and, where there are enough matches, 10,000
rows deep through the cursor. The baseline is the same list without the parameter filter,
in the same run. The SQL of each is EXPLAINed (ANALYZE, BUFFERS).
"""

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
from sqlalchemy.orm import Session

from bench.core import Report, latency_rows
from bench.environment import BenchEnv
from bench.queries import LIST_TARGET, PAGE, WALK_PAGE, explain, plans_section, timed_gets
from bench.scale_data import FORMATS, PROJECTS, SOURCE_FILES, load_jobs
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.param_filters import parse_param_filters
from pastools_jobs.repository import JobFilter, list_jobs

BEFORE_PARAMS_INDEX = "0008"

Query = dict[str, str]


@dataclass(frozen=True)
class Sizes:
    rows: int
    depth: int
    samples: int


def sizes(env: BenchEnv) -> Sizes:
    return env.pick(Sizes(rows=20_000, depth=200, samples=20), Sizes(1_000_000, 10_000, 200))


def months() -> list[str]:
    """The months of the table's year of uploads, the current one excluded (partial)."""
    now = datetime.now(UTC)
    return [
        f"{now.year - 1 + (now.month + k - 1) // 12}-{(now.month + k - 1) % 12 + 1:02d}"
        for k in range(1, 12)
    ]


@dataclass(frozen=True)
class Question:
    name: str
    queries: list[Query]
    """The values it is asked with, in turn; the baseline drops the `param.` items."""
    deep: bool = True
    samples: int | None = None
    """Fewer than the benchmark's, for a question known to be slow."""


def questions(rng: random.Random) -> list[Question]:
    last_month, year_ago = months()[-1], months()[0]
    files = [
        f"uploads/{rng.choice(months())}/file-{rng.randrange(SOURCE_FILES):05d}.{rng.choice(FORMATS)}"
        for _ in range(20)
    ]
    return [
        Question(
            "equality, param.format (1 in 4 to 1 in 10)", [{"param.format": f} for f in FORMATS]
        ),
        Question(
            "equality, one param.source file (~14 jobs)",
            [{"param.source": f} for f in files],
            deep=False,
        ),
        Question(
            f"equality, param.format within {PROJECTS[0]}",
            [{"project_id": PROJECTS[0], "param.format": f} for f in FORMATS],
        ),
        Question(
            f"prefix, last month's uploads (param.source=uploads/{last_month}/*, 1 in 50)",
            [{"param.source": f"uploads/{last_month}/*"}],
        ),
        Question(
            f"prefix, uploads of 11 months ago (param.source=uploads/{year_ago}/*)",
            [{"param.source": f"uploads/{year_ago}/*"}],
            deep=False,
            samples=20,
        ),
    ]


def path(query: Query, limit: int = PAGE, cursor: str | None = None) -> str:
    return "/api/jobs?" + urlencode(
        {**query, "limit": limit, **({"cursor": cursor} if cursor else {})}
    )


def without_params(query: Query) -> Query:
    return {name: value for name, value in query.items() if not name.startswith("param.")}


async def cursor_at(http: httpx.AsyncClient, query: Query, depth: int) -> str | None:
    """The cursor `depth` rows into the query's matches; None if it has fewer."""
    cursor: str | None = None
    for walked in range(0, depth, WALK_PAGE):
        response = await http.get(path(query, min(WALK_PAGE, depth - walked), cursor))
        response.raise_for_status()
        if (cursor := response.json()["next_cursor"]) is None:
            return None
    return cursor


async def deep_paths(http: httpx.AsyncClient, queries: Sequence[Query], depth: int) -> list[str]:
    paths = []
    for query in queries:
        cursor = await cursor_at(http, query, depth)
        if cursor is None:
            raise RuntimeError(f"{query} has fewer than {depth} matches")
        paths.append(path(query, cursor=cursor))
    return paths


def repeated(paths: list[str], samples: int) -> list[str]:
    return [paths[i % len(paths)] for i in range(samples)]


def hot_path(query: Query, cursor: str | None) -> Callable[[Session], object]:
    where = JobFilter(project_id=query.get("project_id"), params=parse_param_filters(query.items()))
    return lambda session: list_jobs(session, where, PAGE, cursor)


async def run(env: BenchEnv, report: Report) -> None:
    size = sizes(env)
    url = await env.database_url("postgresql", "jobs_params")
    await asyncio.to_thread(load_jobs, url, size.rows, BEFORE_PARAMS_INDEX)
    started = time.monotonic()
    await asyncio.to_thread(upgrade_database, url)
    migration_seconds = time.monotonic() - started
    api = await env.start_api_only("params", url)
    plans: dict[str, Callable[[Session], object]] = {}
    async with api.async_client() as http:
        for question in questions(random.Random(8)):
            samples = min(size.samples, question.samples or size.samples)
            first = repeated([path(q) for q in question.queries], samples)
            plain = repeated([path(without_params(q)) for q in question.queries], samples)
            label = f"{question.name}, {size.rows:,} rows"
            report.rows += latency_rows(
                "8 parameter search",
                f"{label}, first page",
                await timed_gets(http, first),
                await timed_gets(http, plain),
                "the same list unfiltered",
                {"p99": LIST_TARGET},
            )
            plans[f"{question.name}, first page"] = hot_path(question.queries[0], None)
            if not question.deep:
                continue
            deep = await deep_paths(http, question.queries, size.depth)
            plain_deep = await deep_paths(http, [without_params(question.queries[0])], size.depth)
            report.rows += latency_rows(
                "8 parameter search",
                f"{label}, {size.depth:,} rows deep",
                await timed_gets(http, repeated(deep, size.samples)),
                await timed_gets(http, repeated(plain_deep, size.samples)),
                "the same list unfiltered",
                {"p99": LIST_TARGET},
            )
            cursor = await cursor_at(http, question.queries[0], size.depth)
            plans[f"{question.name}, {size.depth:,} rows deep"] = hot_path(
                question.queries[0], cursor
            )
    explained = await asyncio.to_thread(explain, url, plans)
    report.sections[f"Parameter search: query plans ({size.rows:,} rows)"] = (
        f"Migration 0009 (params to jsonb, GIN index) on the loaded table: "
        f"{migration_seconds:.0f} s.\n\n{plans_section(explained)}"
    )
