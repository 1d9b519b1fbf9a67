"""Files uploaded over HTTP for imports: streamed to disk, limited, nothing left behind."""

from collections.abc import Iterator

import pytest

from tests.support.jobs import JobsApi
from tests.support.services import UPLOAD_LIMIT

pytestmark = pytest.mark.integration


def uploads_dir_files(api: JobsApi) -> set[str]:
    directory = api.stack.base / "imports" / "uploads"
    return {path.name for path in directory.iterdir()} if directory.exists() else set()


def test_uploaded_csv_is_imported(api: JobsApi) -> None:
    project = api.create_project()
    response = api.http.post(
        "/api/uploads", files={"file": ("people list.csv", b"id,name\n7,Ada\n8,Bob\n", "text/csv")}
    )
    assert response.status_code == 201, response.text
    upload = response.json()
    assert upload["bytes"] == 20
    assert upload["source"].startswith("uploads/") and upload["source"].endswith(".csv")

    job = api.submit("import", project, source=upload["source"], key_column="id")
    done = api.wait_for_status(job["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert api.http.get(f"/api/projects/{project}/records/8").json()["data"]["name"] == "Bob"


def test_upload_past_the_limit_is_413_and_leaves_nothing(api: JobsApi) -> None:
    before = uploads_dir_files(api)
    big = b"x" * (UPLOAD_LIMIT + 1)
    response = api.http.post("/api/uploads", files={"file": ("big.csv", big, "text/csv")})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")

    def chunks() -> Iterator[bytes]:
        yield b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        for _ in range(UPLOAD_LIMIT // 65536 + 2):
            yield b"y" * 65536

    streamed = api.http.post(
        "/api/uploads",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    assert streamed.status_code == 413, "a chunked body without a length went past the limit"
    assert uploads_dir_files(api) == before


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
    response = api.http.post("/api/uploads", **kwargs)
    assert response.status_code == 422
    assert detail in response.json()["detail"]
