"""Traces over OpenTelemetry: a submission's trace runs from `POST /api/jobs` through the
workflow into its activities (the Temporal SDK's tracing interceptor carries it across).

On only when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; the exporter reads the other `OTEL_*` variables
itself): otherwise nothing of OpenTelemetry is even imported, so tracing off costs
nothing.
"""

import atexit
from typing import Any

from fastapi import FastAPI

from pastools_jobs.config import Settings


def start_tracing(settings: Settings, service: str) -> None:
    """Export this process's spans, named `service`, in batches to the OTLP endpoint."""
    if not settings.tracing_enabled:
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # the spans still in the batch go out on exit


def temporal_interceptors(settings: Settings) -> list[Any]:
    """For the Temporal client, and through it its worker: spans of starts, workflows and
    activities, joined to the caller's trace through the workflow's headers."""
    if not settings.tracing_enabled:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def trace_requests(app: FastAPI, settings: Settings) -> None:
    """A span per API request, the parent of whatever the request starts in Temporal."""
    if settings.tracing_enabled:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)
