"""With an OTLP endpoint set, a submission is one trace from `POST /api/jobs` through the
workflow into its activity, across the API and the worker; without one, nothing is traced
(every other test of the suite runs so)."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.jobs import JobsApi, new_project
from tests.support.services import TemporalServer, start_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver, as a collector is to the platform: it keeps the spans."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            for resource in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
                for scope in resource.scope_spans:
                    self.server.spans.extend(
                        Span(attributes["service.name"], span.name, span.trace_id.hex())
                        for span in scope.spans
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def traced_api(
    temporal: TemporalServer, tmp_path_factory: pytest.TempPathFactory, collector: Collector
) -> Iterator[JobsApi]:
    base = tmp_path_factory.mktemp("traced")
    exporting = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    stack = start_stack(
        "traced", base, temporal, f"sqlite:///{base / 'jobs.sqlite3'}", extra_env=exporting
    )
    with stack.client() as client:
        yield JobsApi(client, stack)
    stack.stop()


WANTED = {
    ("pastools-api", "POST /api/jobs"),
    ("pastools-api", "StartWorkflow:ProbeJob"),
    ("pastools-worker", "RunWorkflow:ProbeJob"),
    ("pastools-worker", "StartActivity:process_items"),
    ("pastools-worker", "RunActivity:process_items"),
}


def test_a_submission_is_one_trace_from_the_api_into_its_activity(
    traced_api: JobsApi, collector: Collector
) -> None:
    job = traced_api.submit("probe", traced_api.create_project(new_project()), items=2)
    traced_api.wait_for_status(job["id"], "completed")

    def the_jobs_trace() -> set[tuple[str, str]] | None:
        with collector.lock:
            starts = [s for s in collector.spans if s.name == "StartWorkflow:ProbeJob"]
            if not starts:
                return None
            trace = {
                (s.service, s.name) for s in collector.spans if s.trace_id == starts[-1].trace_id
            }
        return trace if trace >= WANTED else None

    wait_for(the_jobs_trace, what=f"one trace holding {sorted(WANTED)}")
