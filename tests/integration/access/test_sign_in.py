"""The dashboard's sign-in cookie: HttpOnly and SameSite=Strict, and requests that change
something with it must come from our own page (same origin, with the CSRF token)."""

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from pastools_jobs.api.app import create_app
from pastools_jobs.config import Settings
from tests.integration.access.conftest import World
from tests.support.services import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def browser_like(world: World) -> Iterator[httpx.Client]:
    """A client that keeps cookies, signed in with an operator token of project A."""
    stack = world.stack
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        token = stack.create_token("operator", world.a.id)
        signed = client.post("/api/session", json={"token": token}, headers={"Origin": stack.url})
        assert signed.status_code == 200, signed.text
        assert signed.json() == {"role": "operator", "project_id": world.a.id}
        yield client


def csrf_of(client: httpx.Client) -> str:
    page = client.get("/")
    assert page.status_code == 200
    found = re.search(
        r'<meta name="csrf" data-header="X-CSRF-Token" content="([0-9a-f]+)">', page.text
    )
    assert found, "the dashboard does not carry its CSRF token"
    return found.group(1)


def submission(world: World) -> dict:
    return {"type": "probe", "project_id": world.a.id, "params": {"items": 1}}


def probes(world: World) -> int:
    stats = httpx.get(
        f"{world.stack.url}/api/jobs/projects/{world.a.id}/stats", headers=world.stack.auth_headers
    ).json()
    return int(stats["by_type"].get("probe", 0))


def test_the_cookie_is_httponly_samesite_strict(world: World) -> None:
    token = world.stack.create_token("viewer", world.a.id)
    response = httpx.post(
        f"{world.stack.url}/api/session", json={"token": token}, headers={"Origin": world.stack.url}
    )
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert cookie.startswith(f"pastools_session={token};")
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes, "Secure is for https; the stack speaks plain http"


def test_the_cookie_reads_and_with_the_csrf_token_changes(
    world: World, browser_like: httpx.Client
) -> None:
    assert browser_like.get("/api/jobs").status_code == 200
    headers = {
        "X-CSRF-Token": csrf_of(browser_like),
        "Origin": world.stack.url,
        "Sec-Fetch-Site": "same-origin",
    }
    response = browser_like.post("/api/jobs", json=submission(world), headers=headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "forged",
    [
        {},
        {"X-CSRF-Token": "0" * 64},
        {"X-CSRF-Token": "CSRF", "Origin": "http://evil.example"},
        {"X-CSRF-Token": "CSRF", "Sec-Fetch-Site": "cross-site"},
    ],
    ids=["no token", "wrong token", "foreign origin", "cross-site"],
)
def test_cross_site_requests_with_the_cookie_are_refused_and_change_nothing(
    world: World, browser_like: httpx.Client, forged: dict[str, str]
) -> None:
    csrf = csrf_of(browser_like)
    headers = {name: csrf if value == "CSRF" else value for name, value in forged.items()}
    before = probes(world)
    changes: list[tuple[str, str, object]] = [
        ("POST", "/api/jobs", submission(world)),
        ("POST", f"/api/jobs/{world.a.failed_id}/retry", None),
        ("PUT", f"/api/projects/{world.a.id}/tests", {"tests": []}),
    ]
    for method, path, body in changes:
        response = browser_like.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, response.text
    assert probes(world) == before


def test_signing_in_from_another_site_is_refused(world: World) -> None:
    token = world.stack.create_token("viewer", world.a.id)
    response = httpx.post(
        f"{world.stack.url}/api/session",
        json={"token": token},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_a_bad_token_does_not_sign_in(stack: Stack) -> None:
    response = httpx.post(f"{stack.url}/api/session", json={"token": "pst_x_y"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


def test_signed_out_the_dashboard_redirects_to_login(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert httpx.get(f"{stack.url}/login").status_code == 200


def test_signing_out_clears_the_cookie(world: World, browser_like: httpx.Client) -> None:
    response = browser_like.delete("/api/session", headers={"Origin": world.stack.url})
    assert response.status_code == 204
    assert (
        'pastools_session=""' in response.headers["set-cookie"]
        or "Max-Age=0" in response.headers["set-cookie"]
    )
    assert browser_like.get("/", follow_redirects=False).status_code == 303


def test_over_https_the_cookie_is_secure(world: World) -> None:
    """The app itself, in-process on the stack's database, as if behind https."""
    stack = world.stack
    settings = Settings(
        database_url=stack.database_url,
        temporal_address=stack.temporal.address,
        migrate_on_start=False,
        mirror_enabled=False,
    )
    token = stack.create_token("viewer", world.a.id)
    with TestClient(create_app(settings), base_url="https://jobs.example") as client:
        response = client.post(
            "/api/session", json={"token": token}, headers={"Origin": "https://jobs.example"}
        )
    assert response.status_code == 200, response.text
    assert "secure" in {part.strip().lower() for part in response.headers["set-cookie"].split(";")}
