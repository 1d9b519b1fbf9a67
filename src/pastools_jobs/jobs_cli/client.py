"""The REST API over HTTP, for the jobs commands: every failure becomes a `CommandError`
whose message fits on one line."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from pastools_jobs.jobs_cli.views import one_line

DEFAULT_URL = "http://127.0.0.1:8000"
"""Where `pastools up` serves the API."""

TIMEOUT_SECONDS = 30.0
UPLOAD_TIMEOUT = httpx.Timeout(TIMEOUT_SECONDS, write=None, read=300.0)
"""An upload writes for as long as the file takes, then waits while the API stores it."""


class ClientSettings(BaseSettings):
    """Where the API is and who calls it; `--url` and `--token` override these."""

    model_config = SettingsConfigDict(env_prefix="PASTOOLS_", extra="ignore")

    url: str = DEFAULT_URL
    token: str | None = None


class CommandError(Exception):
    """What went wrong, said in one line; the command exits with `EXIT_ERROR`."""


class ApiRefused(CommandError):
    """The API answered with a problem (RFC 9457): its title and detail."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status = status


class ApiUnreachable(CommandError):
    def __init__(self, url: str, error: Exception) -> None:
        reason = one_line(str(error)) or type(error).__name__
        super().__init__(f"cannot reach the API at {url}: {reason}")


class JobsClient:
    """One connection to the API, with the token on every request."""

    def __init__(self, url: str, token: str | None) -> None:
        if not url.startswith(("http://", "https://")):
            raise CommandError(f"the API's URL must begin with http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT_SECONDS)

    def close(self) -> None:
        self._http.close()

    def submit(self, body: Mapping[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._json("POST", "/api/jobs", json=body, headers=headers)

    def upload(self, project_id: str, path: Path) -> dict[str, Any]:
        """Stores the file among the project's import sources; the answer's `source` is
        what an import job's `params.source` names."""
        try:
            with path.open("rb") as file:
                return self._json(
                    "POST",
                    f"/api/projects/{_part(project_id)}/uploads",
                    files={"file": (path.name, file)},
                    timeout=UPLOAD_TIMEOUT,
                )
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror or error}") from None

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/jobs/{_part(job_id)}")

    def page(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        return self._json("GET", "/api/jobs", params=query)

    def act(self, job_id: str, action: str, reason: str | None) -> dict[str, Any]:
        """cancel, retry, pause or resume, with the reason the audit trail keeps."""
        body = {"reason": reason} if reason else None
        return self._json("POST", f"/api/jobs/{_part(job_id)}/{action}", json=body)

    def logs(self, job_id: str, after: int | None) -> dict[str, Any]:
        params = {"after": str(after)} if after is not None else {}
        return self._json("GET", f"/api/jobs/{_part(job_id)}/logs", params=params)

    def _json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        with self._reaching():
            response = self._http.request(method, path, **options)
        if response.is_error:
            raise _refusal(response)
        try:
            answer = response.json()
        except ValueError:
            raise CommandError(f"the API at {self.url} answered {path} with no JSON") from None
        if not isinstance(answer, dict):
            raise CommandError(f"the API at {self.url} answered {path} with no JSON object")
        return answer

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except (httpx.TransportError, httpx.InvalidURL) as error:
            raise ApiUnreachable(self.url, error) from None


def _part(name: str) -> str:
    """An id as one segment of a path, whatever characters it holds."""
    return quote(name, safe="")


def _refusal(response: httpx.Response) -> ApiRefused:
    """The problem's title and detail; a 422 adds its first field at fault."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict) or "title" not in problem:
        return ApiRefused(
            response.status_code, f"HTTP {response.status_code}", response.reason_phrase
        )
    detail = one_line(str(problem.get("detail") or ""))
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        detail += f" ({one_line(str(first.get('field')))}: {one_line(str(first.get('message')))})"
    return ApiRefused(response.status_code, one_line(str(problem["title"])), detail)
