"""Tokens: missing, garbled or revoked ones are refused with 401 on every route, and the
`pastools tokens` command creates, lists and revokes them."""

import httpx
import pytest

from tests.integration.access.conftest import World, client_with
from tests.support.services import Stack

pytestmark = pytest.mark.integration

GUARDED = [
    ("GET", "/api/jobs"),
    ("GET", "/api/jobs/stats"),
    ("GET", "/api/jobs/events"),
    ("GET", "/api/jobs/some-id"),
    ("GET", "/api/jobs/some-id/artifacts/some.csv"),
    ("POST", "/api/jobs"),
    ("POST", "/api/jobs/cleanup"),
    ("GET", "/api/projects"),
    ("POST", "/api/projects/some-project/uploads"),
]

BAD_HEADERS = {
    "missing": {},
    "garbled": {"Authorization": "Bearer not-a-token"},
    "unknown": {"Authorization": "Bearer pst_0000000000000000_nope"},
    "other scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
}


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_requests_without_a_valid_token_are_401(stack: Stack, case: str) -> None:
    with httpx.Client(base_url=stack.url, headers=BAD_HEADERS[case], timeout=30) as client:
        for method, path in GUARDED:
            assert_401(client.request(method, path))
        assert client.get("/healthz").status_code == 200


def test_a_revoked_token_is_401_at_once(world: World) -> None:
    stack = world.stack
    token = stack.create_token("viewer", world.a.id, name="to revoke")
    with client_with(stack, token) as client:
        assert client.get("/api/jobs").status_code == 200
        token_id = token.split("_")[1]
        revoked = stack.tokens("revoke", token_id)
        assert revoked.returncode == 0, revoked.stderr
        assert_401(client.get("/api/jobs"))
        assert_401(client.get(f"/api/jobs/{world.a.export_id}"))


def test_a_wrong_secret_for_a_real_id_is_401(world: World) -> None:
    token = world.stack.create_token("viewer", world.a.id)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with client_with(world.stack, forged) as client:
        assert_401(client.get("/api/jobs"))


def test_tokens_command_creates_lists_and_revokes(stack: Stack) -> None:
    token = stack.create_token("operator", "cli-project", name="ci")
    assert token.startswith("pst_") and "\n" not in token
    token_id = token.split("_")[1]
    listed = stack.tokens("list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(token_id))
    assert line.split("\t")[1:4] == ["operator", "cli-project", "active"]
    assert token.split("_", 2)[2] not in listed.stdout, "a secret was listed"
    assert stack.tokens("revoke", token_id).returncode == 0
    relisted = stack.tokens("list").stdout
    assert f"{token_id}\toperator\tcli-project\trevoked" in relisted


@pytest.mark.parametrize(
    "args",
    [
        ["create", "--role", "viewer"],
        ["create", "--role", "operator"],
        ["create", "--role", "admin", "--project", "p"],
        ["create", "--role", "root"],
        ["create"],
        ["revoke", "no-such-token"],
        ["rotate"],
    ],
)
def test_tokens_command_refuses_bad_input_in_one_line(stack: Stack, args: list[str]) -> None:
    done = stack.tokens(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("pastools: error: ")
