"""Files uploaded over HTTP for imports: streamed to storage, limited, nothing left behind,
and only ever readable by the project they were uploaded to."""

from collections.abc import Iterator

import httpx
import pytest

from pastools_jobs.storage.s3 import S3Storage
from tests.support.jobs import JobsApi
from tests.support.services import TEST_PART_BYTES, UPLOAD_LIMIT

pytestmark = pytest.mark.integration


def stored_files(api: JobsApi) -> set[str]:
    """Everything in the stack's storage, finished or not: a local directory's files, a
    bucket's objects and its unfinished multipart uploads."""
    if not api.stack.on_object_store:
        return {str(path) for path in (api.stack.base / "imports").rglob("*") if path.is_file()}
    storage = api.stack.storage
    assert isinstance(storage, S3Storage)
    objects = storage.client.list_objects_v2(Bucket=storage.bucket).get("Contents", [])
    pending = storage.client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", [])
    return {item["Key"] for item in objects} | {f"pending:{item['Key']}" for item in pending}


def upload_to(api: JobsApi, project: str, **kwargs: object) -> httpx.Response:
    return api.http.post(f"/api/projects/{project}/uploads", **kwargs)  # type: ignore[arg-type]


def test_uploaded_csv_is_imported(api: JobsApi) -> None:
    project = api.create_project()
    response = upload_to(
        api, project, files={"file": ("people list.csv", b"id,name\n7,Ada\n8,Bob\n", "text/csv")}
    )
    assert response.status_code == 201, response.text
    upload = response.json()
    assert upload["bytes"] == 20
    assert upload["source"].startswith("uploads/") and upload["source"].endswith(".csv")

    job = api.submit("import", project, source=upload["source"], key_column="id")
    done = api.wait_for_status(job["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert api.http.get(f"/api/projects/{project}/records/8").json()["data"]["name"] == "Bob"

    other = api.create_project()
    refused = api.http.post(
        "/api/jobs",
        json={"type": "import", "project_id": other, "params": {"source": upload["source"]}},
    )
    assert refused.status_code == 400, "another project's job read the upload"


def test_a_file_of_many_parts_arrives_whole(api: JobsApi) -> None:
    """Larger than several parts of a multipart upload (on the object store), and
    imported back to the last row."""
    project = api.create_project()
    rows = 40_000
    content = "id,name\n" + "".join(f"{i},name-{i}\n" for i in range(rows))
    response = upload_to(api, project, files={"file": ("many.csv", content.encode(), "text/csv")})
    assert response.status_code == 201, response.text
    assert response.json()["bytes"] == len(content) > 4 * TEST_PART_BYTES
    job = api.submit("import", project, source=response.json()["source"], key_column="id")
    done = api.wait_for_status(job["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["result"]["imported"] == rows
    last = api.http.get(f"/api/projects/{project}/records/{rows - 1}").json()
    assert last["data"]["name"] == f"name-{rows - 1}"


def test_an_upload_to_a_project_that_does_not_exist_is_404(api: JobsApi) -> None:
    response = upload_to(api, "no-such-project", files={"file": ("a.csv", b"id\n1\n")})
    assert response.status_code == 404


def test_upload_past_the_limit_is_413_and_leaves_nothing(api: JobsApi) -> None:
    project = api.create_project()
    before = stored_files(api)
    big = b"x" * (UPLOAD_LIMIT + 1)
    response = upload_to(api, project, files={"file": ("big.csv", big, "text/csv")})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")

    def chunks() -> Iterator[bytes]:
        yield b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        for _ in range(UPLOAD_LIMIT // 65536 + 2):
            yield b"y" * 65536

    streamed = upload_to(
        api,
        project,
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    assert streamed.status_code == 413, "a chunked body without a length went past the limit"
    assert stored_files(api) == before


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({"content": b"id\n1\n", "headers": {"content-type": "text/csv"}}, "multipart/form-data"),
        ({"files": {"other": ("a.csv", b"id\n1\n", "text/csv")}}, "field named 'file'"),
        (
            {"content": b"junk", "headers": {"content-type": "multipart/form-data; boundary=z"}},
            "malformed",
        ),
    ],
)
def test_upload_in_the_wrong_shape_is_422(api: JobsApi, kwargs: dict, detail: str) -> None:
    response = upload_to(api, api.create_project(), **kwargs)
    assert response.status_code == 422
    assert detail in response.json()["detail"]
