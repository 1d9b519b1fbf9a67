"""Imports as a loader does them: null markers, declared and inferred column types,
detected CSV dialect and encoding, the rejected-rows artifact, insert-only and replace."""

import json

import httpx
import pytest

from tests.integration.jobs.test_import import records, run_import
from tests.support.jobs import JobsApi

pytestmark = pytest.mark.integration

FLIGHTS = (
    "year;carrier;flight;dep_delay;arr_delay;origin\n"
    "2013;UA;1545;2;11;EWR\n"
    "2013;AA;1141;NA;NA;JFK\n"
    "2013;B6;725;-1;-18;JFK\n"
    "2013;DL;461;NA;12.5;LGA\n"
    "2013;UA;1696;-4;NA;Zürich\n"
)
"""nycflights13 as R writes it: `NA` for a missing value, here with a semicolon and in
Windows-1252, as a spreadsheet exports it."""


def artifact_lines(api: JobsApi, job_id: str, name: str) -> list[dict]:
    response = api.http.get(f"/api/jobs/{job_id}/artifacts/{name}")
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_na_markers_and_numeric_columns_then_pass_a_json_schema(api: JobsApi) -> None:
    project = api.create_project()
    source = api.write_import(project, f"{project}.csv", FLIGHTS.encode("cp1252"))
    types = api.http.put(
        f"/api/projects/{project}/column-types", json={"column_types": {"arr_delay": "number"}}
    )
    assert types.status_code == 200, types.text
    viewer = api.stack.create_token("viewer", project)
    refused = httpx.put(
        f"{api.stack.url}/api/projects/{project}/column-types",
        json={"column_types": {}},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert refused.status_code == 403
    audit = api.http.get(
        "/api/audit", params={"project_id": project, "action": "project.column_types"}
    ).json()
    assert [entry["details"] for entry in audit["items"]] == [
        {"column_types": {"arr_delay": "number"}}
    ]
    shown = api.http.get(f"/api/projects/{project}/column-types").json()
    assert shown == {"column_types": {"arr_delay": "number"}}

    done = run_import(api, project, source=source, key_column="flight", null_values=["", "NA"])

    assert done["status"] == "completed", done["error"]
    result = done["result"]
    assert (result["delimiter"], result["encoding"]) == (";", "cp1252")
    assert set(result["detected"]) == {"delimiter", "quotechar", "encoding"}
    columns = {name: (c["type"], c["decided"]) for name, c in result["column_types"].items()}
    assert columns["dep_delay"] == ("integer", "inferred")
    assert columns["arr_delay"] == ("number", "declared")
    found = records(api, project)
    assert found["1141"]["dep_delay"] is None
    assert found["725"] == {
        "year": 2013,
        "carrier": "B6",
        "flight": 725,
        "dep_delay": -1,
        "arr_delay": -18,
        "origin": "JFK",
    }
    assert found["1696"]["origin"] == "Zürich"

    schema = {
        "type": "object",
        "properties": {
            "dep_delay": {"type": ["integer", "null"]},
            "arr_delay": {"type": ["number", "null"]},
        },
        "required": ["dep_delay"],
    }
    assert api.http.put(f"/api/projects/{project}/schema", json=schema).status_code == 200
    validation = api.submit("validation", project)
    checked = api.wait_for_status(validation["id"], "completed", "failed", timeout=60)
    assert checked["status"] == "completed", checked["error"]
    assert (checked["result"]["valid"], checked["result"]["invalid"]) == (5, 0)


def test_every_bad_row_up_to_the_cap_is_in_the_rejected_rows_artifact(api: JobsApi) -> None:
    project = api.create_project()
    rows = ["id,score"] + [f"{n},{'x' if n % 10 == 0 else n}" for n in range(1, 401)]
    source = api.write_import(project, f"{project}.csv", "\n".join(rows) + "\n")

    done = run_import(
        api,
        project,
        source=source,
        key_column="id",
        column_types={"score": "integer"},
        on_error="skip",
        max_examples=2,
        max_rejected=30,
        batch_rows=100,
    )

    assert done["status"] == "completed", done["error"]
    result = done["result"]
    assert (result["imported"], result["skipped"]) == (360, 40)
    assert len(result["errors"]) == 2
    assert result["rejected_written"] == 30
    lines = artifact_lines(api, done["id"], result["rejected_rows"])
    assert [line["line"] for line in lines] == [n + 1 for n in range(10, 301, 10)]
    assert lines[0] == {
        "line": 11,
        "reason": "column 'score': not an integer: 'x'",
        "column": "score",
        "value": "x",
    }


def test_insert_only_rejects_existing_keys_as_bad_rows(api: JobsApi) -> None:
    project = api.create_project()
    first = api.write_import(project, f"{project}-1.csv", "id,name\n1,Ada\n2,Linus\n")
    assert run_import(api, project, source=first, key_column="id")["status"] == "completed"
    second = api.write_import(project, f"{project}-2.csv", "id,name\n2,Other\n3,Grace\n")

    failed = run_import(api, project, source=second, key_column="id", mode="insert-only")
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "BadRow"
    assert "line 2: the key '2' exists already" in failed["error"]["message"]
    assert set(records(api, project)) == {"1", "2"}, "a failed insert-only import wrote"

    done = run_import(
        api, project, source=second, key_column="id", mode="insert-only", on_error="skip"
    )
    assert done["status"] == "completed", done["error"]
    assert (done["result"]["imported"], done["result"]["skipped"]) == (1, 1)
    found = records(api, project)
    assert found["2"]["name"] == "Linus"
    assert found["3"]["name"] == "Grace"
    rejected = artifact_lines(api, done["id"], "rejected-rows.jsonl")
    assert rejected == [{"line": 2, "reason": "the key '2' exists already (insert-only)"}]


def test_replace_swaps_in_exactly_the_file_or_leaves_the_records_as_they_were(
    api: JobsApi,
) -> None:
    project = api.create_project()
    old = api.write_import(project, f"{project}-old.csv", "id,v\nold1,1\nold2,2\n")
    assert run_import(api, project, source=old, key_column="id")["status"] == "completed"
    good = [f"new{n},{n}" for n in range(500)]
    broken = api.write_import(
        project, f"{project}-broken.csv", "\n".join(["id,v", *good, "bad,1,extra"]) + "\n"
    )

    failed = run_import(
        api, project, source=broken, key_column="id", mode="replace", batch_rows=100
    )

    assert failed["status"] == "failed"
    assert "line 502" in failed["error"]["message"]
    assert set(records(api, project)) == {"old1", "old2"}

    whole = api.write_import(project, f"{project}-new.csv", "\n".join(["id,v", *good]) + "\n")
    done = run_import(api, project, source=whole, key_column="id", mode="replace", batch_rows=100)
    assert done["status"] == "completed", done["error"]
    assert done["result"]["imported"] == 500
    assert set(records(api, project)) == {f"new{n}" for n in range(500)}
