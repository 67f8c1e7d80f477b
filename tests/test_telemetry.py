from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mcpmux.audit import telemetry
from mcpmux.audit.events import tool_call_event
from mcpmux.audit.lifecycle import downstream_start
from mcpmux.audit.log import AuditLog


class Sinks:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        telemetry.configure(tracer_provider, MeterProvider(metric_readers=[self.reader]))

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            m.name: list(m.data.data_points)
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }


@pytest.fixture
def sinks() -> Iterator[Sinks]:
    yield Sinks()
    telemetry.shutdown()


def _call(outcome: str = "ok", duration_ms: float = 250.0, **extra: Any) -> dict[str, Any]:
    event = tool_call_event(
        exposed="git__git_log",
        server="git",
        tool="git_log",
        decision="denied" if outcome == "denied" else "allowed",
        rule="policy.default",
        outcome=outcome,
        duration_ms=duration_ms,
        arguments={},
        error="boom" if outcome == "error" else None,
    )
    return {**event, "host": "cursor", "profile": "work", **extra}


def test_each_relayed_call_becomes_one_span_with_its_timing_and_attributes(sinks: Sinks) -> None:
    telemetry.observe(_call("ok", 250.0))
    (span,) = sinks.spans.get_finished_spans()
    assert span.name == "tools/call git__git_log"
    assert span.kind is SpanKind.SERVER
    assert span.start_time is not None and span.end_time is not None
    assert span.end_time - span.start_time == 250_000_000
    attributes = dict(span.attributes or {})
    assert {
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": "git_log",
        "mcpmux.server": "git",
        "mcpmux.exposed": "git__git_log",
        "mcpmux.outcome": "ok",
        "mcpmux.decision": "allowed",
        "mcpmux.host": "cursor",
        "mcpmux.profile": "work",
    }.items() <= attributes.items()
    assert "error.type" not in attributes
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    ("outcome", "status", "error_type"),
    [
        ("error", StatusCode.ERROR, "error"),
        ("timeout", StatusCode.ERROR, "timeout"),
        ("denied", StatusCode.UNSET, "denied"),
    ],
)
def test_failed_and_refused_calls_are_marked_on_their_span(
    sinks: Sinks, outcome: str, status: StatusCode, error_type: str
) -> None:
    telemetry.observe(_call(outcome))
    (span,) = sinks.spans.get_finished_spans()
    assert span.status.status_code is status
    assert (span.attributes or {})["error.type"] == error_type


def test_calls_are_counted_and_their_latency_recorded_per_server_tool_and_outcome(sinks: Sinks) -> None:
    for outcome, ms in [("ok", 100.0), ("ok", 300.0), ("error", 50.0)]:
        telemetry.observe(_call(outcome, ms))
    telemetry.observe(downstream_start("git", 42))
    metrics = sinks.metrics()
    counts = {dict(p.attributes)["mcpmux.outcome"]: p.value for p in metrics["mcpmux.tool_calls"]}
    assert counts == {"ok": 2, "error": 1}
    ok = next(p for p in metrics["mcp.server.operation.duration"] if p.attributes["mcpmux.outcome"] == "ok")
    assert (ok.count, ok.sum) == (2, pytest.approx(0.4))
    assert [dict(p.attributes) for p in metrics["mcpmux.events"]] == [{"event": "downstream_start", "server": "git"}]
    assert len(sinks.spans.get_finished_spans()) == 3


def test_an_audit_log_observer_turns_written_events_into_spans(sinks: Sinks, tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl", observers=[telemetry.observe]) as log:
        log.bind(serve="s1")
        written = log.write(_call())
    (span,) = sinks.spans.get_finished_spans()
    assert written is not None
    assert (span.attributes or {})["mcpmux.id"] == written["id"]
    assert (span.attributes or {})["mcpmux.serve"] == "s1"


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"MCPMUX_OTEL": "1"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "MCPMUX_OTEL": "0"}, False),
    ],
)
def test_telemetry_is_off_unless_the_environment_asks_for_it(environ: dict[str, str], enabled: bool) -> None:
    assert telemetry.enabled_by_env(environ) is enabled


def test_observe_is_a_no_op_when_telemetry_is_off() -> None:
    assert telemetry.setup({}) is None
    telemetry.observe(_call())  # nothing configured: nothing happens, nothing raises
    telemetry.shutdown()


def _has_otlp_exporter() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.skipif(_has_otlp_exporter(), reason="the OTLP exporter is installed")
def test_telemetry_asked_for_without_the_exporter_says_how_to_install_it(caplog: pytest.LogCaptureFixture) -> None:
    assert telemetry.setup({"MCPMUX_OTEL": "1"}) is None
    telemetry.shutdown()
    assert "pip install 'mcpmux[otel]'" in caplog.text
