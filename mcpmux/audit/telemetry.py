"""OpenTelemetry traces and metrics, made from audit events after the fact. Off unless configured.

On when `MCPMUX_OTEL=1` or `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set, and
the `otel` extra (`opentelemetry-sdk`, `opentelemetry-exporter-otlp-proto-http`) is installed:
then spans and metrics go over OTLP/HTTP, configured by the standard `OTEL_*` variables
(endpoint, headers, `OTEL_SERVICE_NAME`, default `mcpmux`). `MCPMUX_OTEL=0` turns it off.

Each relayed call becomes one SERVER span named `tools/call <exposed>`, with the call's start and end
times, and the attributes of the OpenTelemetry MCP conventions (`mcp.method.name`, `gen_ai.tool.name`,
`error.type`) plus `mcpmux.*` (server, exposed, decision, rule, outcome, profile, host). Metrics: the
counter `mcpmux.tool_calls` and the histogram `mcp.server.operation.duration` (seconds), by server,
tool, outcome and decision; lifecycle events count in `mcpmux.events`.

Building spans from the audit event keeps the hot path free of tracing: the relay does no more work
than writing its audit line, and `observe` is one global check when telemetry is off. The cost is
that no trace context is propagated to downstreams in `_meta` (see the README).

No syslog or JSON-to-stderr sink: OTLP reaches a team's collector, which forwards to any SIEM, and the
audit file itself is JSON Lines for log shippers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from mcpmux import __version__

logger = logging.getLogger("mcpmux")

SCOPE = "mcpmux"
_ERROR_OUTCOMES = frozenset({"error", "timeout", "unavailable", "tool_error"})


def enabled_by_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for telemetry (`MCPMUX_OTEL`, else an OTLP endpoint variable)."""
    env = os.environ if environ is None else environ
    flag = env.get("MCPMUX_OTEL", "").strip().lower()
    if flag:
        return flag not in ("0", "false", "no", "off")
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


class Telemetry:
    """Turns audit events into spans and metrics through the given providers."""

    def __init__(self, tracer_provider: trace.TracerProvider, meter_provider: metrics.MeterProvider) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._tracer = tracer_provider.get_tracer(SCOPE, __version__)
        meter = meter_provider.get_meter(SCOPE, __version__)
        self._calls = meter.create_counter("mcpmux.tool_calls", unit="{call}", description="Relayed tools/call")
        self._duration = meter.create_histogram(
            "mcp.server.operation.duration",
            unit="s",
            description="Duration of relayed tools/call, from the host's request to the answer",
            explicit_bucket_boundaries_advisory=[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
        )
        self._events = meter.create_counter("mcpmux.events", unit="{event}", description="Lifecycle events")

    def observe(self, event: Mapping[str, Any]) -> None:
        """Record one audit event; call it as the event is written (the span ends now)."""
        kind = event.get("event")
        if kind != "tool_call":
            if isinstance(kind, str):
                self._events.add(1, _attributes(event, ("event", "server")))
            return
        metric_attrs = _attributes(event, ("server", "tool", "outcome", "decision"), prefix="mcpmux.")
        duration_ms = event.get("duration_ms")
        seconds = float(duration_ms) / 1000 if isinstance(duration_ms, int | float) else 0.0
        outcome = event.get("outcome")
        self._calls.add(1, metric_attrs)
        self._duration.record(seconds, {**metric_attrs, "mcp.method.name": "tools/call"})

        end = time.time_ns()
        span_attrs = {
            "mcp.method.name": "tools/call",
            "gen_ai.operation.name": "execute_tool",
            **_attributes(event, ("tool",), prefix="gen_ai.", rename={"tool": "tool.name"}),
            **_attributes(
                event,
                ("server", "exposed", "decision", "rule", "outcome", "profile", "host", "serve", "id"),
                prefix="mcpmux.",
            ),
        }
        if outcome in _ERROR_OUTCOMES or outcome in ("denied", "unknown"):
            span_attrs["error.type"] = str(outcome)
        span = self._tracer.start_span(
            f"tools/call {event.get('exposed') or ''}".strip(),
            kind=SpanKind.SERVER,
            attributes=span_attrs,
            start_time=end - int(seconds * 1e9),
        )
        if outcome in _ERROR_OUTCOMES:
            error = event.get("error")
            span.set_status(Status(StatusCode.ERROR, str(error) if error else str(outcome)))
        span.end(end_time=end)

    def shutdown(self, timeout_seconds: float = 2.0) -> None:
        """Flush and stop the providers (SDK providers only; the API's no-op ones have nothing to flush)."""
        for provider in (self.tracer_provider, self.meter_provider):
            flush = getattr(provider, "force_flush", None)
            if callable(flush):
                flush(int(timeout_seconds * 1000))
            stop = getattr(provider, "shutdown", None)
            if callable(stop):
                stop()


def _attributes(
    event: Mapping[str, Any], keys: tuple[str, ...], *, prefix: str = "", rename: Mapping[str, str] | None = None
) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {}
    for key in keys:
        value = event.get(key)
        if value is None:
            continue
        name = prefix + (rename or {}).get(key, key)
        out[name] = value if isinstance(value, str | int | float | bool) else str(value)
    return out


_active: Telemetry | None = None
_configured = False


def configure(tracer_provider: trace.TracerProvider, meter_provider: metrics.MeterProvider) -> Telemetry:
    """Send telemetry to these providers from now on (tests pass the SDK's in-memory ones)."""
    global _active, _configured
    _active = Telemetry(tracer_provider, meter_provider)
    _configured = True
    return _active


def setup(environ: Mapping[str, str] | None = None) -> Telemetry | None:
    """Turn telemetry on when the environment asks for it and the `otel` extra is installed; else None.

    Safe to call more than once; `observe` calls it on first use. Problems go to the log (stderr), never stdout.
    """
    global _active, _configured
    if _configured:
        return _active
    _configured = True
    if not enabled_by_env(environ):
        return None
    try:
        _active = Telemetry(*_otlp_providers())
    except ImportError as exc:
        logger.warning(
            "telemetry is configured but the OpenTelemetry SDK or OTLP exporter is missing (%s); "
            "install it with: pip install 'mcpmux[otel]'",
            exc.name,
        )
    return _active


def _otlp_providers() -> tuple[trace.TracerProvider, metrics.MeterProvider]:
    # Imported here: the SDK and the exporter are the optional `otel` extra.
    import importlib

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    span_mod = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    metric_mod = importlib.import_module("opentelemetry.exporter.otlp.proto.http.metric_exporter")
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "mcpmux")})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_mod.OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(metric_mod.OTLPMetricExporter())
    return tracer_provider, MeterProvider(resource=resource, metric_readers=[reader])


def observe(event: Mapping[str, Any]) -> None:
    """Record an audit event as telemetry; a no-op (one check) when telemetry is off."""
    active = _active if _configured else setup()
    if active is not None:
        active.observe(event)


def shutdown(timeout_seconds: float = 2.0) -> None:
    """Flush and stop telemetry at the end of `serve`; a later `setup` reads the environment again."""
    global _active, _configured
    if _active is not None:
        _active.shutdown(timeout_seconds)
    _active, _configured = None, False
