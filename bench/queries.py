"""Benchmark 5: listing and statistics over a large jobs table, against Temporal visibility.

The API (its own process, mirror off: no workflow backs these rows) serves a
PostgreSQL table of generated jobs (`bench.scale_data`). Each question is asked over
HTTP, sequentially: a filtered first page, a page deep into the same filter reached
through the cursor (only the deep request is timed), and both stats endpoints. The
baseline asks Temporal's visibility the same questions about the workflows that exist
on the dev server (the platform stack's jobs), and the API is asked them again about
exactly those jobs, so that one comparison is on equal data.

The SQL of each hot path is captured from the repository functions themselves and
EXPLAINed (ANALYZE, BUFFERS) on the large table; a Seq Scan on jobs is flagged. The
statistics read the job_counts table, which the load recounts after its COPY.
"""

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import Session
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client

from bench.core import Report, Row, Target, below, latency_rows, markdown_table
from bench.environment import BenchEnv, wait_completed
from bench.scale_data import PROJECTS, STATUSES, TYPES, load_jobs
from pastools_jobs.db.models import Job
from pastools_jobs.domain import JobStatus
from pastools_jobs.repository import JobFilter, job_stats, list_jobs
from tests.support.services import Stack

PAGE = 50
WALK_PAGE = 500
LIST_TARGET = below(50, "ms")
STATS_TARGET = below(100, "ms")
LARGEST_PROJECT = PROJECTS[0]


@dataclass(frozen=True)
class Sizes:
    """The issue's sizes; `small` keeps the smoke test's share of its budget to seconds."""

    rows: int
    depth: int
    samples: int
    stats_samples: int
    min_workflows: int


def sizes(env: BenchEnv) -> Sizes:
    return env.pick(
        Sizes(rows=10_000, depth=1_000, samples=20, stats_samples=10, min_workflows=40),
        Sizes(rows=1_000_000, depth=10_000, samples=200, stats_samples=50, min_workflows=400),
    )


@dataclass(frozen=True)
class Dataset:
    """Row counts per (project, status) of a jobs table: where the questions point."""

    combos: dict[tuple[str, str], int]

    @property
    def projects(self) -> list[str]:
        return sorted({project for project, _status in self.combos})

    def largest(self, count: int) -> list[tuple[str, str]]:
        return sorted(self.combos, key=lambda combo: -self.combos[combo])[:count]

    def smallest(self) -> tuple[str, str]:
        return min(self.combos, key=lambda combo: self.combos[combo])

    def random_combos(self, rng: random.Random, count: int) -> list[tuple[str, str]]:
        combos = sorted(self.combos)
        return [rng.choice(combos) for _ in range(count)]


def read_dataset(database_url: str) -> Dataset:
    engine = create_engine(database_url)
    query = select(Job.project_id, Job.status, func.count()).group_by(Job.project_id, Job.status)
    with engine.connect() as connection:
        combos = {(project, status): count for project, status, count in connection.execute(query)}
    engine.dispose()
    return Dataset(combos)


def list_path(project: str, status: str, limit: int = PAGE, cursor: str | None = None) -> str:
    params = {"status": status, "project_id": project, "limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    return f"/api/jobs?{urlencode(params)}"


async def timed_gets(http: httpx.AsyncClient, paths: Sequence[str]) -> list[float]:
    """Milliseconds of each GET, one after another (after one untimed warm-up)."""
    (await http.get(paths[0])).raise_for_status()
    samples = []
    for path in paths:
        started = time.perf_counter()
        response = await http.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples


async def cursor_at(http: httpx.AsyncClient, project: str, status: str, depth: int) -> str:
    """The cursor that starts `depth` rows into the filter, walked page by page."""
    cursor: str | None = None
    walked = 0
    while walked < depth:
        step = min(WALK_PAGE, depth - walked)
        response = await http.get(list_path(project, status, step, cursor))
        response.raise_for_status()
        cursor = response.json()["next_cursor"]
        if cursor is None:
            raise RuntimeError(f"{project}/{status} has fewer than {depth} rows")
        walked += step
    assert cursor is not None
    return cursor


@dataclass
class ApiPaths:
    """The questions, as API requests: each list is one sample set."""

    first: list[str]
    deep: list[str]
    stats: list[str]
    project_stats: list[str]


async def api_paths(
    http: httpx.AsyncClient, data: Dataset, depth: int, size: Sizes, seed: int
) -> ApiPaths:
    rng = random.Random(seed)
    first = [list_path(p, s) for p, s in data.random_combos(rng, size.samples)]
    deep_combos = [c for c in data.largest(5) if depth >= PAGE and data.combos[c] >= depth + PAGE]
    cursors = [await cursor_at(http, p, s, depth) for p, s in deep_combos]
    deep = [list_path(p, s, cursor=c) for (p, s), c in zip(deep_combos, cursors, strict=True)] * (
        size.samples // max(1, len(cursors))
    )
    projects = [rng.choice(data.projects) for _ in range(size.stats_samples)]
    return ApiPaths(
        first=first,
        deep=deep,
        stats=["/api/jobs/stats"] * size.stats_samples,
        project_stats=[f"/api/jobs/projects/{p}/stats" for p in projects],
    )


QuestionRows = Callable[[str, list[float], list[float] | None, str, Target], list[Row]]


def question_rows(benchmark: str, suffix: str) -> QuestionRows:
    """Rows for one data set: the same questions, labelled with the data they ran on."""

    def rows(
        question: str, api: list[float], base: list[float] | None, name: str, target: Target
    ) -> list[Row]:
        return latency_rows(benchmark, f"{question}{suffix}", api, base, name, {"p99": target})

    return rows


async def api_samples(http: httpx.AsyncClient, paths: ApiPaths) -> dict[str, list[float]]:
    """Samples per question; a question without requests (no deep page) is left out."""
    questions = {
        "first": paths.first,
        "deep": paths.deep,
        "stats": paths.stats,
        "project_stats": paths.project_stats,
    }
    return {name: await timed_gets(http, each) for name, each in questions.items() if each}


# --- Temporal visibility: the same questions ---------------------------------------


async def list_page_ms(client: Client, query: str, token: bytes = b"") -> tuple[float, bytes]:
    """One ListWorkflowExecutions request (a page of 50): its time and next page token."""
    request = ListWorkflowExecutionsRequest(
        namespace=client.namespace, page_size=PAGE, query=query, next_page_token=token
    )
    started = time.perf_counter()
    response = await client.workflow_service.list_workflow_executions(request)
    return (time.perf_counter() - started) * 1000, response.next_page_token


async def counts_ms(client: Client, scope: str) -> float:
    """A stats answer from visibility: one count per status and one per type."""
    started = time.perf_counter()
    for status in STATUSES:
        await client.count_workflows(f"{scope} AND JobStatus = '{status}'")
    for kind in TYPES:
        await client.count_workflows(f"{scope} AND JobType = '{kind}'")
    return (time.perf_counter() - started) * 1000


def filter_query(scope: str, project: str, status: str) -> str:
    return f"{scope} AND JobStatus = '{status}' AND ProjectId = '{project}'"


async def visibility_samples(
    client: Client, scope: str, data: Dataset, depth: int, size: Sizes, seed: int
) -> dict[str, list[float]]:
    rng = random.Random(seed)
    combos = data.random_combos(rng, size.samples)
    first = [(await list_page_ms(client, filter_query(scope, p, s)))[0] for p, s in combos]
    deep: list[float] = []
    [(project, status)] = data.largest(1)
    query = filter_query(scope, project, status)
    token = b""
    for _ in range(depth // PAGE):
        _ms, token = await list_page_ms(client, query, token)
        if not token:
            break
    if token:
        deep = [(await list_page_ms(client, query, token))[0] for _ in range(size.samples // 2)]
    projects = [rng.choice(data.projects) for _ in range(size.stats_samples)]
    samples = {
        "first": first,
        "stats": [await counts_ms(client, scope) for _ in range(size.stats_samples)],
        "project_stats": [
            await counts_ms(client, f"{scope} AND ProjectId = '{p}'") for p in projects
        ],
    }
    if deep:
        samples["deep"] = deep
    return samples


# --- Query plans of the hot paths ---------------------------------------------------


def captured_statements(
    session: Session, work: Callable[[Session], object]
) -> list[tuple[str, Any]]:
    """The SQL statements (and their parameters) that `work` sends to read the jobs table:
    one, or two where the first may not find the page (a parameter filter's window)."""
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM job_attempts" not in statement:
            statements.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        work(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return statements


def explain(database_url: str, hot_paths: dict[str, Callable[[Session], object]]) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL each hot path really sends."""
    engine = create_engine(database_url)
    plans = {}
    with Session(engine) as session:
        for name, work in hot_paths.items():
            explained = []
            for statement, parameters in captured_statements(session, work):
                rows = session.connection().exec_driver_sql(
                    f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
                )
                explained.append("\n".join(str(row[0]) for row in rows))
            plans[name] = "\n-- then --\n".join(explained)
            session.rollback()
    engine.dispose()
    return plans


def hot_paths(data: Dataset, cursor: str) -> dict[str, Callable[[Session], object]]:
    """The SQL behind each timed request: on the largest (project, status), whose deep page
    the cursor points into, and on the rarest, where a filter can reject the most rows."""
    [(project, status)] = data.largest(1)
    rare_project, rare_status = data.smallest()
    where = JobFilter(statuses=[JobStatus(status)], project_id=project)
    rare = JobFilter(statuses=[JobStatus(rare_status)], project_id=rare_project)
    return {
        f"list, {status} + {project}, first page": lambda s: list_jobs(s, where, PAGE, None),
        f"list, {status} + {project}, deep page": lambda s: list_jobs(s, where, PAGE, cursor),
        f"list, {rare_status} + {rare_project} (rarest), first page": (
            lambda s: list_jobs(s, rare, PAGE, None)
        ),
        "stats, all projects": lambda s: job_stats(s),
        f"stats, one project ({project})": lambda s: job_stats(s, project),
    }


def plans_section(plans: dict[str, str]) -> str:
    lines = ["| hot path | scans | Seq Scan on jobs | execution |", "|---|---|---|--:|"]
    for name, plan in plans.items():
        scans = sorted({line.strip().removeprefix("->").strip().split("  (")[0]
                        for line in plan.splitlines() if "Scan" in line})  # fmt: skip
        execution = " + ".join(
            line.split(":", 1)[1].strip() for line in plan.splitlines() if "Execution" in line
        )
        seq = "**yes**" if "Seq Scan on jobs" in plan else "no"
        lines.append(f"| {name} | {'; '.join(scans)} | {seq} | {execution} |")
    details = "\n\n".join(f"{name}:\n\n```\n{plan}\n```" for name, plan in plans.items())
    return (
        "\n".join(lines) + f"\n\n<details><summary>Full plans</summary>\n\n{details}\n\n</details>"
    )


# --- The benchmark ----------------------------------------------------------------


async def ensure_workflows(stack: Stack, count: int) -> None:
    """Enough jobs on the dev server for visibility to answer about (when run alone)."""
    missing = count - sum(read_dataset(stack.database_url).combos.values())
    if missing <= 0:
        return
    project = f"visible-{uuid.uuid4().hex[:8]}"
    body = {"type": "probe", "project_id": project, "params": {"items": 1}}
    async with stack.async_client() as http:
        for _ in range(missing):
            (await http.post("/api/jobs", json=body)).raise_for_status()
        await wait_completed(http, project, missing, timeout=600)


def rows_for(
    rows: QuestionRows, api: dict[str, list[float]], base: dict[str, list[float]], name: str
) -> list[Row]:
    out = rows("list first page, status + project", api["first"], base["first"], name, LIST_TARGET)
    if "deep" in api:
        out += rows("list deep page via cursor", api["deep"], base.get("deep"), name, LIST_TARGET)
    out += rows("GET /api/jobs/stats", api["stats"], base["stats"], name, STATS_TARGET)
    out += rows("GET …/projects/{p}/stats", api["project_stats"], base["project_stats"], name,
                STATS_TARGET)  # fmt: skip
    return out


@dataclass
class EqualData:
    """Visibility and the API asked about the same jobs: those that exist on the server."""

    jobs: int
    depth: int
    visibility: dict[str, list[float]]
    api: dict[str, list[float]]


async def on_equal_data(env: BenchEnv, size: Sizes) -> EqualData:
    platform = await env.platform()
    client = await env.client()
    await ensure_workflows(platform, size.min_workflows)
    existing = read_dataset(platform.database_url)
    depth = max(0, min(size.depth, (max(existing.combos.values()) - PAGE) // PAGE * PAGE))
    scope = f"TaskQueue = '{platform.task_queue}'"
    visibility = await visibility_samples(client, scope, existing, depth, size, seed=1)
    async with platform.async_client() as http:
        api = await api_samples(http, await api_paths(http, existing, depth, size, seed=1))
    return EqualData(sum(existing.combos.values()), depth, visibility, api)


async def run(env: BenchEnv, report: Report) -> None:
    size = sizes(env)
    equal = await on_equal_data(env, size)
    url = await env.database_url("postgresql", "jobs_scale")
    started = time.monotonic()
    await asyncio.to_thread(load_jobs, url, size.rows)
    load_seconds = time.monotonic() - started
    scaled = read_dataset(url)
    [(project, status)] = scaled.largest(1)
    api = await env.start_api_only("scale", url)
    async with api.async_client() as http:
        paths = await api_paths(http, scaled, size.depth, size, seed=2)
        large = await api_samples(http, paths)
        cursor = await cursor_at(http, project, status, size.depth)
        plans = await asyncio.to_thread(explain, url, hot_paths(scaled, cursor))

    visible = f"visibility, {equal.jobs:,} workflows"
    report.rows += rows_for(
        question_rows("5 queries", f", {size.rows:,} rows"), large, equal.visibility, visible
    )
    report.sections[f"Queries on equal data: the {equal.jobs:,} jobs that exist"] = (
        f"Deep pages {equal.depth:,} rows in.\n\n"
        if equal.depth
        else "Too few for a deep page.\n\n"
    ) + markdown_table(
        rows_for(question_rows("5 queries", ""), equal.api, equal.visibility, "visibility")
    )
    report.sections[f"Query plans of the hot paths ({size.rows:,} rows)"] = (
        f"Loaded by COPY in {load_seconds:.0f} s. Deep pages: {size.depth:,} rows into "
        f"{project}/{status} for the API; {equal.depth:,} rows in for visibility, as deep as the "
        f"{equal.jobs:,} workflows allow.\n\n{plans_section(plans)}"
    )
