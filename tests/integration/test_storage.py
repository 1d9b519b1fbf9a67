"""The promises of file storage, held by both backends alike: local disk and a real
S3-compatible server. A file appears only when complete, each project reads only its
own, a resumed artifact is byte-identical, reads are ranged and streamed, and an
unreachable or misconfigured store says so in words."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pastools_jobs.config import Settings
from pastools_jobs.domain import SourceNotFound, StorageUnavailable, UnsafeSource
from pastools_jobs.storage import open_storage
from pastools_jobs.storage.base import ArtifactBusy, Storage
from pastools_jobs.storage.s3 import S3Storage
from tests.support.jobs import JobsApi
from tests.support.services import (
    TEST_PART_BYTES,
    ObjectStore,
    TemporalServer,
    free_port,
    start_stack,
)

pytestmark = pytest.mark.integration

CONTENT = os.urandom(5 * TEST_PART_BYTES + 12_345)
"""Several parts and a short last one."""


@pytest.fixture(params=["local disk", "object store"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local disk":
        return open_storage(Settings(data_dir=tmp_path))
    store: ObjectStore = request.getfixturevalue("object_store")
    env = store.storage_env(f"storage-{uuid.uuid4().hex[:12]}")
    return open_storage(
        Settings(
            data_dir=tmp_path,
            storage_url=env["PASTOOLS_STORAGE_URL"],
            storage_part_bytes=TEST_PART_BYTES,
        )
    )


def pieces(data: bytes, size: int = 10_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def put(storage: Storage, project: str, source: str, data: bytes) -> None:
    sink = storage.upload(project, source)
    for piece in pieces(data):
        sink.write(piece)
    sink.commit()


def test_an_upload_appears_only_when_complete_and_reads_back_whole(storage: Storage) -> None:
    sink = storage.upload("p1", "uploads/data.bin")
    for piece in pieces(CONTENT):
        sink.write(piece)
    with pytest.raises(SourceNotFound):
        storage.check_source("p1", "uploads/data.bin")
    sink.commit()

    storage.check_source("p1", "uploads/data.bin")
    with storage.open_source("p1", "uploads/data.bin") as stream:
        assert stream.read() == CONTENT


def test_a_discarded_upload_leaves_nothing(storage: Storage) -> None:
    sink = storage.upload("p1", "uploads/broken.bin")
    for piece in pieces(CONTENT):
        sink.write(piece)
    sink.discard()
    with pytest.raises(SourceNotFound):
        storage.check_source("p1", "uploads/broken.bin")
    if isinstance(storage, S3Storage):
        pending = storage.client.list_multipart_uploads(Bucket=storage.bucket)
        assert pending.get("Uploads", []) == []


def test_each_project_reads_only_its_own_files(storage: Storage) -> None:
    put(storage, "owner", "secret.csv", b"id\n1\n")
    storage.check_source("owner", "secret.csv")
    with pytest.raises(SourceNotFound):
        storage.check_source("other", "secret.csv")
    for climb in ("../owner/secret.csv", "a/../../owner/secret.csv"):
        with pytest.raises(UnsafeSource, match=r"'\.\.'"):
            storage.open_source("other", climb)


def test_a_source_reads_from_any_offset_and_knows_its_size(storage: Storage) -> None:
    """What a resumed import does: seek to its checkpoint and read on from there."""
    put(storage, "p1", "big.bin", CONTENT)
    with storage.open_source("p1", "big.bin") as stream:
        assert stream.seek(0, os.SEEK_END) == len(CONTENT)
        offset = 3 * TEST_PART_BYTES + 7
        stream.seek(offset)
        assert stream.read(1000) == CONTENT[offset : offset + 1000]
        stream.seek(10)
        assert stream.read(5) == CONTENT[10:15]


def write_until_a_checkpoint_past(storage: Storage, job: str, limit: int) -> int:
    """An attempt that checkpoints as it goes and dies (is never finished) past `limit`."""
    writer = storage.artifact_writer(job, "export.csv", None, checkpoint_interval=0)
    checkpoint = 0
    for piece in pieces(CONTENT, 7_000):
        writer.stream.write(piece)
        if writer.checkpoint_due():
            checkpoint = writer.checkpoint()
        if checkpoint > limit:
            break
    writer.close()
    return checkpoint


def finish_from(storage: Storage, job: str, checkpoint: int) -> None:
    retry = storage.artifact_writer(job, "export.csv", checkpoint, checkpoint_interval=0)
    assert retry.resumed
    for piece in pieces(CONTENT[checkpoint:], 7_000):
        retry.stream.write(piece)
    assert retry.finish() == len(CONTENT)


def artifact_content(storage: Storage, job: str) -> bytes:
    return b"".join(storage.read_artifact(job, "export.csv")[1])


def test_an_artifact_resumed_at_its_checkpoint_is_byte_identical(storage: Storage) -> None:
    checkpoint = write_until_a_checkpoint_past(storage, "job-1", 2 * TEST_PART_BYTES)
    assert 0 < checkpoint < len(CONTENT)
    assert storage.list_artifacts("job-1") == [], "an unfinished file was listed"

    finish_from(storage, "job-1", checkpoint)

    assert [a.name for a in storage.list_artifacts("job-1")] == ["export.csv"]
    assert storage.list_artifacts("job-1")[0].bytes == len(CONTENT)
    assert artifact_content(storage, "job-1") == CONTENT


def test_a_retry_after_the_file_was_finished_keeps_it_visible_and_identical(
    storage: Storage,
) -> None:
    """The attempt died after finishing, before Temporal recorded it: its last heartbeat
    named an earlier checkpoint."""
    checkpoint = write_until_a_checkpoint_past(storage, "job-2", TEST_PART_BYTES)
    finish_from(storage, "job-2", checkpoint)

    retry = storage.artifact_writer("job-2", "export.csv", checkpoint, checkpoint_interval=0)
    assert retry.resumed
    if isinstance(storage, S3Storage):
        assert artifact_content(storage, "job-2") == CONTENT, "the object vanished meanwhile"
    for piece in pieces(CONTENT[checkpoint:], 7_000):
        retry.stream.write(piece)
    retry.finish()
    assert artifact_content(storage, "job-2") == CONTENT


def test_a_checkpoint_whose_bytes_are_gone_starts_over(storage: Storage) -> None:
    retry = storage.artifact_writer(
        "job-3", "export.csv", 3 * TEST_PART_BYTES, checkpoint_interval=0
    )
    assert not retry.resumed
    retry.stream.write(b"key\n")
    retry.finish()
    assert artifact_content(storage, "job-3") == b"key\n"


def test_an_empty_artifact_is_a_file(storage: Storage) -> None:
    storage.artifact_writer("job-4", "export.csv", None, checkpoint_interval=0).finish()
    assert [(a.name, a.bytes) for a in storage.list_artifacts("job-4")] == [("export.csv", 0)]


def test_a_file_that_stays_empty_still_checkpoints_and_resumes_at_nothing(
    storage: Storage,
) -> None:
    """A validation whose records are all valid writes no report line: its position must
    still become durable, and a retry at 0 bytes finishes an empty file."""
    first = storage.artifact_writer("job-7", "report.jsonl", None, checkpoint_interval=0)
    assert first.checkpoint_due()
    assert first.checkpoint() == 0
    first.close()
    retry = storage.artifact_writer("job-7", "report.jsonl", 0, checkpoint_interval=0)
    assert retry.finish() == 0
    assert [(a.name, a.bytes) for a in storage.list_artifacts("job-7")] == [("report.jsonl", 0)]


def test_a_stalled_attempt_cannot_corrupt_the_file_of_its_retry(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    """On S3 no lock keeps an attempt given up for dead from writing on: the retry lists
    the ETags of its own parts when it completes, so a part the stalled attempt wrote
    over fails the completion (a retried activity) instead of ending up in the file."""
    env = object_store.storage_env(f"stalled-{uuid.uuid4().hex[:12]}")
    settings = Settings(
        data_dir=tmp_path,
        storage_url=env["PASTOOLS_STORAGE_URL"],
        storage_part_bytes=TEST_PART_BYTES,
    )
    storage = open_storage(settings)
    checkpoint = write_until_a_checkpoint_past(storage, "job-5", TEST_PART_BYTES)
    stalled = open_storage(settings).artifact_writer(
        "job-5", "export.csv", checkpoint, checkpoint_interval=0
    )
    retry = storage.artifact_writer("job-5", "export.csv", checkpoint, checkpoint_interval=0)
    retry.stream.write(CONTENT[checkpoint:])
    stalled.stream.write(b"z" * TEST_PART_BYTES)  # over the retry's next part

    with pytest.raises(ArtifactBusy, match="changed by another attempt"):
        retry.finish()
    assert storage.list_artifacts("job-5") == []


def test_an_unreachable_object_store_is_an_outage_in_words(
    object_store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    storage = open_storage(Settings(data_dir=tmp_path, storage_url="s3://down/jobs"))
    with pytest.raises(StorageUnavailable, match="bucket 'down' cannot be reached"):
        storage.check_source("p1", "a.csv")
    with pytest.raises(StorageUnavailable):
        storage.artifact_writer("job-6", "export.csv", None, checkpoint_interval=0)


def test_an_unreachable_object_store_answers_503_with_retry_after(
    object_store: ObjectStore, temporal: TemporalServer, tmp_path: Path
) -> None:
    """Uploads and artifacts wait for the store; the API itself starts and serves."""
    down = {
        **object_store.client_env,
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",
        "PASTOOLS_STORAGE_URL": "s3://down/jobs",
    }
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    stack = start_stack("s3-down", tmp_path, temporal, url, worker=False, extra_env=down)
    try:
        with stack.client() as http:
            project = JobsApi(http, stack).create_project()
            upload = http.post(
                f"/api/projects/{project}/uploads", files={"file": ("a.csv", b"id\n")}
            )
            job = http.post("/api/jobs", json={"type": "probe", "project_id": project}).json()
            listing = http.get(f"/api/jobs/{job['id']}/artifacts")
        for response in (upload, listing):
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"].isdigit()
            assert "cannot be reached" in response.json()["detail"]
    finally:
        stack.stop()


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            {"PASTOOLS_STORAGE_URL": "s3://no-such-bucket/jobs"},
            "the object store has no bucket 'no-such-bucket' (PASTOOLS_STORAGE_URL)",
        ),
        (
            {"PASTOOLS_STORAGE_URL": "s3://jobs/x", "AWS_ENDPOINT_URL_S3": "not a url"},
            "the object store cannot be used: Invalid endpoint: not a url",
        ),
        (
            {"PASTOOLS_IMPORT_DIR": "{data}"},
            "the artifacts directory {data}/artifacts is inside the import directory {data}: "
            "set PASTOOLS_IMPORT_DIR apart from PASTOOLS_DATA_DIR",
        ),
    ],
    ids=["missing bucket", "bad endpoint", "artifacts among imports"],
)
def test_storage_set_up_wrong_stops_a_worker_with_one_line(
    object_store: ObjectStore, tmp_path: Path, settings: dict[str, str], line: str
) -> None:
    data = str(tmp_path.resolve())
    env = {
        **os.environ,
        **object_store.client_env,
        "PASTOOLS_DATA_DIR": data,
        "PASTOOLS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        **{name: value.format(data=data) for name, value in settings.items()},
    }
    run = subprocess.run(
        [sys.executable, "-m", "pastools_jobs", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"pastools: error: {line.format(data=data)}"]
