"""Webhooks end to end: a stack, real jobs, and a receiver of the test's own on this host.

The stack allows 127.0.0.0/8 (PASTOOLS_WEBHOOK_ALLOWED_NETWORKS), retries after 0.2 s
doubling, gives a request 1 s and a delivery 3 attempts, so that every path (delivered,
retried, given up) ends within seconds. The shared stack, without the allowance, shows
that a loopback URL is refused.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, backend_stack
from tests.support.jobs import JobsApi, new_project
from tests.support.services import TemporalServer, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 1
MAX_ATTEMPTS = 3
WEBHOOK_ENV = {
    "PASTOOLS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "PASTOOLS_WEBHOOK_RETRY_INITIAL_SECONDS": "0.2",
    "PASTOOLS_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    "PASTOOLS_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
}


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server in a thread that records every POST and answers as told, per path:
    a list of status codes used up in order (200 once it is empty), and a delay."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def answer(self, path: str) -> tuple[int, float]:
        with self.lock:
            queue = self.answers.get(path, [])
            return (queue.pop(0) if queue else 200), self.delays.get(path, 0.0)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            me = holder[0]
            with me.lock:
                me.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            status, delay = me.answer(self.path)
            time.sleep(delay)  # the receiver is slow: that is what is being tested
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the platform gave up waiting and closed the connection

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", params=BACKENDS)
def hooked(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[JobsApi]:
    stack = backend_stack(request, temporal, tmp_path_factory, "webhooks", WEBHOOK_ENV)
    with stack.client() as client:
        yield JobsApi(client, stack)
    stack.stop()


def create_webhook(
    http: httpx.Client, project: str, url: str, events: list[str], **extra: Any
) -> dict[str, Any]:
    response = http.post(
        f"/api/projects/{project}/webhooks", json={"url": url, "events": events, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(http: httpx.Client, project: str, webhook_id: str) -> list[dict[str, Any]]:
    response = http.get(f"/api/projects/{project}/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["items"]


def wait_for_delivery(
    http: httpx.Client, project: str, webhook_id: str, status: str, timeout: float = 60
) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        found = deliveries(http, project, webhook_id)
        return found[0] if found and found[0]["status"] == status else None

    return wait_for(ended, timeout=timeout, what=f"a {status} delivery of {webhook_id}")


def verifies(secret: str, request: Received) -> bool:
    """The receiver's side of Standard Webhooks, written from the spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    headers = request.headers
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    sent = [s.partition(",")[2] for s in headers["webhook-signature"].split() if s[:3] == "v1,"]
    return any(hmac.compare_digest(s, expected) for s in sent)


def test_a_failed_job_is_delivered_once_signed(hooked: JobsApi, receiver: Receiver) -> None:
    project = hooked.create_project()
    path = f"/failed-{project}"
    hook = create_webhook(hooked.http, project, receiver.url(path), ["job.failed"])
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in hooked.http.get(f"/api/projects/{project}/webhooks/{hook['id']}").json()

    done = hooked.submit("probe", project, items=1, item_ms=1)  # completes: not wanted
    hooked.wait_for_status(done["id"], "completed")
    job = hooked.submit_failing_import(project)
    hooked.wait_for_status(job["id"], "failed")

    delivery = wait_for_delivery(hooked.http, project, hook["id"], "delivered")
    (request,) = receiver.received(path)
    assert verifies(hook["secret"], request)
    assert request.headers["webhook-id"] == delivery["id"]
    assert request.headers["content-type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 120
    sent = json.loads(request.body)
    assert sent["type"] == "job.failed"
    assert sent["data"]["id"] == job["id"] and sent["data"]["status"] == "failed"
    assert sent["data"]["error"]["type"] == "SourceUnusable"
    assert delivery["event"] == "job.failed" and delivery["job_id"] == job["id"]
    assert (delivery["attempts"], delivery["last_status_code"]) == (1, 200)
    assert delivery["delivered_at"] is not None and delivery["last_error"] is None
    assert len(deliveries(hooked.http, project, hook["id"])) == 1
    assert len(receiver.received(path)) == 1


def test_a_500_is_retried_with_the_same_id(hooked: JobsApi, receiver: Receiver) -> None:
    project = hooked.create_project()
    path = f"/flaky-{project}"
    receiver.answers[path] = [500, 500]
    hook = create_webhook(hooked.http, project, receiver.url(path), ["job.completed"])

    job = hooked.submit("probe", project, items=1, item_ms=1)
    delivery = wait_for_delivery(hooked.http, project, hook["id"], "delivered")

    requests = receiver.received(path)
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {delivery["id"]}
    assert len({r.body for r in requests}) == 1  # the same bytes every time
    assert all(verifies(hook["secret"], r) for r in requests)
    assert json.loads(requests[0].body)["data"]["id"] == job["id"]
    assert (delivery["attempts"], delivery["last_status_code"]) == (3, 200)


def test_a_receiver_down_or_slow_never_holds_the_job(hooked: JobsApi, receiver: Receiver) -> None:
    project = hooked.create_project()
    slow = f"/slow-{project}"
    receiver.delays[slow] = TIMEOUT_SECONDS + 1.5
    down = create_webhook(
        hooked.http, project, f"http://127.0.0.1:{free_port()}/hook", ["job.completed"]
    )
    slowed = create_webhook(hooked.http, project, receiver.url(slow), ["job.completed"])

    started = time.monotonic()
    job = hooked.submit("probe", project, items=1, item_ms=1)
    hooked.wait_for_status(job["id"], "completed", timeout=20)
    assert time.monotonic() - started < 20
    assert hooked.get(job["id"])["error"] is None

    for hook, words in ((down, "request failed"), (slowed, "no answer within")):
        delivery = wait_for_delivery(hooked.http, project, hook["id"], "failed")
        assert delivery["attempts"] == MAX_ATTEMPTS
        assert words in delivery["last_error"], delivery
        assert delivery["last_status_code"] is None
    assert len(receiver.received(slow)) == MAX_ATTEMPTS
    assert hooked.get(job["id"])["status"] == "completed"


def test_the_slack_format_is_one_line_still_signed(hooked: JobsApi, receiver: Receiver) -> None:
    project = hooked.create_project()
    path = f"/slack-{project}"
    hook = create_webhook(hooked.http, project, receiver.url(path), ["job.failed"], format="slack")
    job = hooked.submit_failing_import(project)
    wait_for_delivery(hooked.http, project, hook["id"], "delivered")
    (request,) = receiver.received(path)
    assert verifies(hook["secret"], request)
    text = json.loads(request.body)["text"]
    assert text.startswith(f"job {job['id']} (import, project {project}) failed: SourceUnusable")


def test_roles_and_projects(hooked: JobsApi, receiver: Receiver) -> None:
    stack = hooked.stack
    project = hooked.create_project()
    hook = create_webhook(hooked.http, project, receiver.url("/roles"), ["job.failed"])
    base = f"/api/projects/{project}/webhooks"

    def as_token(token: str) -> httpx.Client:
        return httpx.Client(
            base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    with as_token(stack.create_token("viewer", project)) as viewer:
        assert viewer.get(base).status_code == 200
        shown = viewer.get(f"{base}/{hook['id']}")
        assert shown.status_code == 200
        # A chat webhook's path is its credential: a viewer sees the host, not the path.
        assert shown.json()["url"] == receiver.url("/…")
        assert "/roles" not in viewer.get(base).text
        assert "/roles" not in viewer.get("/api/audit", params={"project_id": project}).text
        assert viewer.get(f"{base}/{hook['id']}/deliveries").status_code == 200
        new = {"url": receiver.url("/v"), "events": ["job.failed"]}
        assert viewer.post(base, json=new).status_code == 403
        assert viewer.patch(f"{base}/{hook['id']}", json={"enabled": False}).status_code == 403
        assert viewer.delete(f"{base}/{hook['id']}").status_code == 403

    other = hooked.create_project()
    with as_token(stack.create_token("operator", other)) as stranger:
        for response in (
            stranger.get(base),
            stranger.get(f"{base}/{hook['id']}"),
            stranger.get(f"{base}/{hook['id']}/deliveries"),
            stranger.delete(f"{base}/{hook['id']}"),
            # its own project, another project's webhook id: no such webhook there
            stranger.get(f"/api/projects/{other}/webhooks/{hook['id']}"),
        ):
            assert response.status_code == 404, response.text
            assert response.headers["content-type"].startswith("application/problem+json")

    with as_token(stack.create_token("operator", project)) as operator:
        changed = operator.patch(
            f"{base}/{hook['id']}", json={"enabled": False, "description": "paused"}
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["enabled"], changed.json()["description"]) == (False, "paused")
        made = operator.post(base, json={"url": receiver.url("/op"), "events": ["job.failed"]})
        assert made.status_code == 201, made.text
        assert operator.delete(f"{base}/{made.json()['id']}").status_code == 204
        assert operator.get(f"{base}/{made.json()['id']}").status_code == 404
    assert hooked.http.get(f"/api/projects/{new_project()}/webhooks").status_code == 404


def test_a_disabled_webhook_is_told_nothing(hooked: JobsApi, receiver: Receiver) -> None:
    project = hooked.create_project()
    path = f"/off-{project}"
    off = create_webhook(hooked.http, project, receiver.url(path), ["job.completed"], enabled=False)
    on = create_webhook(hooked.http, project, receiver.url(f"{path}-on"), ["job.completed"])
    hooked.submit("probe", project, items=1, item_ms=1)
    wait_for_delivery(hooked.http, project, on["id"], "delivered")
    assert deliveries(hooked.http, project, off["id"]) == []
    assert receiver.received(path) == []

    patched = hooked.http.patch(
        f"/api/projects/{project}/webhooks/{off['id']}", json={"enabled": True}
    )
    assert patched.status_code == 200, patched.text
    deleted = hooked.http.delete(f"/api/projects/{project}/webhooks/{on['id']}")
    assert deleted.status_code == 204
    changes = hooked.http.get(
        "/api/audit",
        params={
            "project_id": project,
            "action": ["webhook.create", "webhook.update", "webhook.delete"],
        },
    ).json()["items"]
    assert [(e["action"], e["details"]["webhook_id"]) for e in reversed(changes)] == [
        ("webhook.create", off["id"]),
        ("webhook.create", on["id"]),
        ("webhook.update", off["id"]),
        ("webhook.delete", on["id"]),
    ]
    assert changes[1]["details"]["enabled"] is True
    assert not any("secret" in json.dumps(e) for e in changes), "the audit never holds a secret"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost:9/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]:9/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.1.2.3/hook", "private"),
        ("http://user:pw@example.com/hook", "user name or password"),
        ("gopher://example.com/", "http:// or https://"),
    ],
)
def test_without_the_allowance_internal_urls_are_refused(
    api: JobsApi, url: str, words: str
) -> None:
    project = api.create_project()
    response = api.http.post(
        f"/api/projects/{project}/webhooks", json={"url": url, "events": ["job.failed"]}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422 and problem["title"] == "Webhook URL refused"
    assert words in problem["detail"]
    assert api.http.get(f"/api/projects/{project}/webhooks").json() == []
