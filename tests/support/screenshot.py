"""Take the README's picture of the dashboard, with jobs in every status.

Run through `scripts/screenshot`; it starts its own Temporal and stack and stops them.
"""

import sys
import tempfile
from pathlib import Path

from tests.support.browser import chromium, sign_in
from tests.support.jobs import JobsApi
from tests.support.services import start_stack, start_temporal


def populate(api: JobsApi) -> None:
    """Jobs of every type and in every status, in two projects."""
    for project in ("catalogue", "billing"):
        api.create_project(project)
        rows = "".join(f'{{"sku": "{project[:3]}-{i}", "price": {i % 40}}}\n' for i in range(500))
        source = api.write_import(project, f"{project}.jsonl", rows)
        api.wait_for_status(
            api.submit("import", project, source=source, key_column="sku")["id"], "completed"
        )
        api.wait_for_status(api.submit("export", project, format="csv")["id"], "completed")
        api.wait_for_status(api.submit_failing_import(project)["id"], "failed")
    api.http.put("/api/projects/catalogue/schema", json={"properties": {"price": {"maximum": 30}}})
    api.wait_for_status(api.submit("validation", "catalogue")["id"], "completed")
    cancelled = api.submit("probe", "catalogue", items=1000, item_ms=100)
    api.wait_running(cancelled["id"])
    api.http.post(f"/api/jobs/{cancelled['id']}/cancel")
    api.wait_for_status(cancelled["id"], "cancelled")
    for _ in range(2):
        api.wait_running(api.submit("probe", "catalogue", items=600, item_ms=100)["id"], 20)


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        temporal = start_temporal(base / "temporal")
        stack = start_stack("screenshot", base / "stack", temporal, f"sqlite:///{base}/jobs.db")
        try:
            with stack.client() as http:
                populate(JobsApi(http, stack))
                # A queued job: one whose worker is not there to take it.
                stack.kill_worker()
                http.post(
                    "/api/jobs", json={"type": "test_run", "project_id": "billing", "params": {}}
                )
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                sign_in(page, stack)
                page.locator("#live.on").wait_for()
                page.locator("#jobs tbody tr").nth(9).wait_for()
                target.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(target), full_page=True)
        finally:
            stack.stop()
            temporal.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard.png"))
