"""Webhooks without a stack: Standard Webhooks signatures, the SSRF address rules, the
bodies, and the outbox writing one delivery per job end in the move's own transaction."""

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network

import pytest
from sqlalchemy import select

from pastools_jobs.contracts import FailureInfo, JobEvent
from pastools_jobs.datasets.projects import create_project
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Webhook, WebhookDelivery
from pastools_jobs.domain import JobStatus, UnsafeWebhookUrl
from pastools_jobs.mirror.apply import apply_event, restate
from pastools_jobs.webhooks.addresses import check_url, parse_url, redacted, refusal
from pastools_jobs.webhooks.deliveries import delete_ended_before
from pastools_jobs.webhooks.events import EventError, EventJob, WebhookEvent, WebhookFormat, body
from pastools_jobs.webhooks.signing import new_secret, signature, signed_headers
from tests.support.rows import submitted

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOOPBACK = [ip_network("127.0.0.0/8")]


def verify(secret: str, headers: dict[str, str], payload: bytes) -> bool:
    """A receiver's check, written from the Standard Webhooks spec, not from our module."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{payload.decode()}"
    expected = base64.b64encode(hmac.new(key, content.encode(), hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(sent.split(",", 1)[1], expected)
        for sent in headers["webhook-signature"].split()
        if sent.startswith("v1,")
    )


def test_the_signature_matches_the_specs_own_example() -> None:
    """The test vector of the standard-webhooks reference libraries."""
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_receiver_verifies_what_is_signed_and_nothing_else() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    payload = b'{"type":"job.failed"}'
    headers = signed_headers(secret, "msg_1", 1_700_000_000, payload)
    assert headers["content-type"] == "application/json"
    assert verify(secret, headers, payload)
    assert not verify(secret, headers, payload + b" ")
    assert not verify(new_secret(), headers, payload)
    assert not verify(secret, {**headers, "webhook-timestamp": "1700000001"}, payload)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not a public"),
    ],
)
def test_internal_addresses_are_refused(address: str, why: str) -> None:
    reason = refusal(ip_address(address), [])
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address), []) is None


def test_allowed_networks_open_exactly_what_they_name() -> None:
    assert refusal(ip_address("127.0.0.1"), LOOPBACK) is None
    assert refusal(ip_address("::ffff:127.0.0.1"), LOOPBACK) is None
    assert refusal(ip_address("::1"), LOOPBACK) is not None
    assert refusal(ip_address("10.0.0.1"), LOOPBACK) is not None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http://user:pw@example.com/", "user name or password"),
        ("http:///nohost", "no host"),
        ("http://example.com:99999/", "cannot be parsed"),
        ("http://example.com/" + "a" * 2000, "longer than"),
    ],
)
def test_urls_of_the_wrong_shape_are_refused(url: str, words: str) -> None:
    with pytest.raises(UnsafeWebhookUrl, match=words):
        parse_url(url)


def test_names_are_checked_after_resolution() -> None:
    """`localhost` is a name; what it resolves to is what counts."""
    with pytest.raises(UnsafeWebhookUrl, match=r"localhost \(.*\) is a loopback"):
        asyncio.run(check_url("http://localhost:8080/hook", []))
    with pytest.raises(UnsafeWebhookUrl, match=r"169\.254\.169\.254 is a link-local"):
        asyncio.run(check_url("http://169.254.169.254/latest/meta-data/", []))
    with pytest.raises(UnsafeWebhookUrl, match=r"ffff:127\.0\.0\.1 .*is a loopback"):
        asyncio.run(check_url("http://[::ffff:127.0.0.1]/", []))
    checked = asyncio.run(check_url("http://127.0.0.1:9/x?y=1", LOOPBACK))
    assert (checked.host, checked.port, str(checked.address)) == ("127.0.0.1", 9, "127.0.0.1")


JOB = EventJob(
    id="j1",
    type="import",
    project_id="demo",
    status=JobStatus.FAILED,
    error=EventError(type="SourceUnusable", message="the file is empty"),
    result=None,
    created_at=T0,
    completed_at=T0,
    attempt=2,
)


def test_the_standard_body() -> None:
    sent = json.loads(body(WebhookEvent.JOB_FAILED, JOB, WebhookFormat.STANDARD))
    assert sent == {
        "type": "job.failed",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {
            "id": "j1",
            "type": "import",
            "project_id": "demo",
            "status": "failed",
            "error": {"type": "SourceUnusable", "message": "the file is empty"},
            "result": None,
            "created_at": "2026-01-01T00:00:00Z",
            "completed_at": "2026-01-01T00:00:00Z",
            "attempt": 2,
        },
    }


def test_the_slack_body_is_one_line_of_text() -> None:
    sent = json.loads(body(WebhookEvent.JOB_FAILED, JOB, WebhookFormat.SLACK))
    assert sent == {
        "text": "job j1 (import, project demo) failed: SourceUnusable: the file is empty"
    }
    bulk = JOB.model_copy(
        update={
            "type": "bulk",
            "status": JobStatus.COMPLETED,
            "error": None,
            "result": {"action": "cancel", "matched": 3, "changed": 2, "skipped": 1},
        }
    )
    text = json.loads(body(WebhookEvent.BULK_FINISHED, bulk, WebhookFormat.SLACK))["text"]
    assert (
        text
        == "bulk job j1 (bulk, project demo) finished: completed (3 matched, 2 changed, 1 skipped)"
    )


def add_webhook(db: Database, project: str, events: list[str], enabled: bool = True) -> str:
    webhook_id = f"wh_{uuid.uuid4().hex}"
    with db.transaction() as session:
        session.add(
            Webhook(
                id=webhook_id,
                project_id=project,
                url="https://example.com/hook",
                events=events,
                format="standard",
                secret=new_secret(),
                description=None,
                enabled=enabled,
                created_at=T0,
                updated_at=T0,
            )
        )
    return webhook_id


def new_project(db: Database) -> str:
    project = f"wh-{uuid.uuid4().hex[:10]}"
    with db.transaction() as session:
        create_project(session, project, None)
    return project


def ended(job_id: str, project: str, status: JobStatus, run: str = "r1") -> JobEvent:
    error = None if status is JobStatus.COMPLETED else FailureInfo(type="Boom", message="it broke")
    return JobEvent(
        job_id=job_id,
        run_id=run,
        job_type="probe",
        project_id=project,
        status=status,
        at=T0,
        created_at=T0,
        error=error,
    )


def deliveries_of(db: Database, webhook_id: str) -> list[WebhookDelivery]:
    with db.transaction() as session:
        query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        return list(session.scalars(query))


def test_a_jobs_end_is_written_once_for_each_webhook_that_wants_it(db: Database) -> None:
    project = new_project(db)
    failures = add_webhook(db, project, ["job.failed"])
    everything = add_webhook(db, project, [e.value for e in WebhookEvent])
    completions = add_webhook(db, project, ["job.completed"])
    disabled = add_webhook(db, project, ["job.failed"], enabled=False)
    job_id = submitted(db, project)

    for _ in range(3):  # the workflow's record, then the reconciler's repeats
        with db.transaction() as session:
            apply_event(session, ended(job_id, project, JobStatus.FAILED))

    assert [len(deliveries_of(db, w)) for w in (failures, everything, completions, disabled)] == [
        1,
        1,
        0,
        0,
    ]
    (delivery,) = deliveries_of(db, failures)
    assert delivery.id.startswith("msg_") and delivery.status == "pending"
    assert (delivery.event, delivery.job_id, delivery.dispatched_at) == ("job.failed", job_id, None)
    sent = json.loads(delivery.payload)
    assert sent["type"] == "job.failed"
    assert sent["data"]["error"] == {"type": "Boom", "message": "it broke"}
    assert sent["data"]["status"] == "failed" and sent["data"]["project_id"] == project


def test_a_restated_end_is_a_new_event(db: Database) -> None:
    project = new_project(db)
    webhook = add_webhook(db, project, ["job.completed", "job.failed"])
    job_id = submitted(db, project)
    with db.transaction() as session:
        apply_event(session, ended(job_id, project, JobStatus.COMPLETED))
    with db.transaction() as session:
        restate(session, ended(job_id, project, JobStatus.FAILED))
    assert sorted(d.event for d in deliveries_of(db, webhook)) == ["job.completed", "job.failed"]


def test_a_bulk_jobs_end_is_bulk_finished(db: Database) -> None:
    project = new_project(db)
    webhook = add_webhook(db, project, ["bulk.finished", "job.cancelled"])
    job_id = submitted(db, project, job_type="bulk")
    event = ended(job_id, project, JobStatus.CANCELLED).model_copy(update={"job_type": "bulk"})
    with db.transaction() as session:
        apply_event(session, event)
    assert [d.event for d in deliveries_of(db, webhook)] == ["bulk.finished"]


def test_no_webhook_no_delivery_and_nothing_written_if_the_move_rolls_back(db: Database) -> None:
    project = new_project(db)
    job_id = submitted(db, project)
    with db.transaction() as session:
        apply_event(session, ended(job_id, project, JobStatus.FAILED))
    webhook = add_webhook(db, project, ["job.failed"])
    other = submitted(db, project)
    with pytest.raises(RuntimeError), db.transaction() as session:
        apply_event(session, ended(other, project, JobStatus.FAILED))
        raise RuntimeError("the transaction that ends the row fails")
    assert deliveries_of(db, webhook) == []


def test_the_cleanup_removes_old_ended_deliveries_only(db: Database) -> None:
    project = new_project(db)
    webhook = add_webhook(db, project, ["job.failed"])
    with db.transaction() as session:
        for status in ("pending", "delivering", "delivered", "failed"):
            session.add(
                WebhookDelivery(
                    id=f"msg_{uuid.uuid4().hex}",
                    webhook_id=webhook,
                    event="job.failed",
                    job_id="j",
                    payload="{}",
                    status=status,
                    attempts=1,
                    created_at=T0,
                )
            )
    with db.writing() as connection:
        delete_ended_before(connection, T0 + timedelta(seconds=1))
    assert sorted(d.status for d in deliveries_of(db, webhook)) == ["delivering", "pending"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B1/secretkey", "https://hooks.slack.com/…"),
        ("https://example.com:8443/hook?token=abc", "https://example.com:8443/…"),
        ("http://example.com", "http://example.com"),
        ("http://example.com/", "http://example.com"),
    ],
)
def test_a_url_shown_to_viewers_keeps_its_host_and_hides_its_path(url: str, shown: str) -> None:
    assert redacted(url) == shown
