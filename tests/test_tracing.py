"""Traces of the real app (in-process, with the SDK's in-memory exporter) and of a real server (the console exporter): a span
per request continuing the caller's trace, one per model call linked to every request it served, the trace id in the log."""
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

from servers import api_env, api_server
from sentiment_mlops.config import Settings
from sentiment_mlops.serve.app import create_app
from sentiment_mlops.serve.http import Admission
from sentiment_mlops.serve.tracing import Traced, Tracing

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def traced(small_model, tmp_path_factory):
    "The app on the small model with an in-memory exporter; the spans it finished, and its log directory."
    s, _ = small_model
    tmp = tmp_path_factory.mktemp("traced")
    exporter = InMemorySpanExporter()
    provider = TracerProvider(); provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(tracking_uri=s.tracking_uri, model_cache_dir=tmp / "cache", log_dir=tmp / "logs", reload_check_seconds=0,
                        microbatch_max_wait_ms=20)
    with TestClient(create_app(settings, tracing=Tracing(provider))) as client:
        while client.get("/ready").status_code != 200: time.sleep(0.05)
        exporter.clear()
        yield client, exporter, tmp / "logs"


def test_a_request_continues_the_callers_trace_and_its_model_call_links_to_it(traced):
    client, exporter, logs = traced
    r = client.post("/predict", json={"text": "the crew was lovely"}, headers={"traceparent": CALLER, "X-Request-ID": "traced-1"})
    assert r.status_code == 200
    spans = exporter.get_finished_spans()
    request = next(s for s in spans if s.name == "POST /predict")
    call = next(s for s in spans if s.name == "model call" and any(link.context.span_id == request.context.span_id for link in s.links))
    assert format(request.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert format(request.parent.span_id, "016x") == "00f067aa0ba902b7"
    a = request.attributes
    assert (a["http.route"], a["http.response.status_code"], a["sentiment.model.version"]) == ("/predict", 200, r.json()["model"]["version"])
    assert a["sentiment.queue_wait_ms"] >= 0 and call.attributes["sentiment.batch_size"] == 1
    for _ in range(50):
        lines = [json.loads(x) for x in (logs / "predictions.jsonl").read_text().splitlines()] if (logs / "predictions.jsonl").exists() else []
        if any(x["request_id"] == "traced-1" for x in lines): break
        time.sleep(0.1)
    assert next(x for x in lines if x["request_id"] == "traced-1")["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_one_model_call_serves_many_requests_and_links_to_each(traced):
    client, exporter, _ = traced
    exporter.clear()
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: client.post("/predict", json={"text": f"flight {i} was delayed"}).status_code, range(64)))
    assert set(codes) == {200}
    spans = exporter.get_finished_spans()
    requests = {s.context.span_id for s in spans if s.name == "POST /predict"}
    calls = [s for s in spans if s.name == "model call"]
    linked = [link.context.span_id for c in calls for link in c.links]
    print(f"\n64 concurrent requests: {len(calls)} model calls, the largest linked to {max(len(c.links) for c in calls)} requests")
    assert sorted(linked) == sorted(requests) and max(len(c.links) for c in calls) > 1
    assert all(c.attributes["sentiment.batch_size"] == len(c.links) for c in calls)


def test_a_batch_request_and_a_shed_one_are_traced(traced):
    client, exporter, _ = traced
    exporter.clear()
    assert client.post("/predict/batch", json={"texts": ["great"] * 100}).status_code == 200
    batch = next(s for s in exporter.get_finished_spans() if s.name == "POST /predict/batch")
    assert any(link.context.span_id == batch.context.span_id for s in exporter.get_finished_spans() if s.name == "model call" for link in s.links)
    gate = client.app.middleware_stack
    while not isinstance(gate, Admission): gate = gate.app
    gate.inside += 10**6  # (the worker is full)
    try: assert client.post("/predict", json={"text": "too many"}).status_code == 503
    finally: gate.inside -= 10**6
    shed = [s for s in exporter.get_finished_spans() if s.attributes.get("http.response.status_code") == 503][-1]
    assert (shed.name, shed.attributes["sentiment.shed_reason"]) == ("POST /predict", "queue_full")


def test_a_sampled_out_request_gets_no_span_no_model_call_span_and_no_trace_id_in_the_log(small_model, tmp_path):
    "With a sampler that keeps only callers' sampled traces: 16 requests without `traceparent` leave no trace; one with it does."
    s, _ = small_model
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF)); provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(tracking_uri=s.tracking_uri, model_cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs", reload_check_seconds=0)
    with TestClient(create_app(settings, tracing=Tracing(provider))) as client:
        while client.get("/ready").status_code != 200: time.sleep(0.05)
        exporter.clear()
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda i: client.post("/predict", json={"text": f"flight {i}"}, headers={"X-Request-ID": f"out-{i}"}).status_code,
                                  range(16)))
        assert set(codes) == {200} and exporter.get_finished_spans() == ()
        assert client.post("/predict", json={"text": "kept"}, headers={"traceparent": CALLER, "X-Request-ID": "kept"}).status_code == 200
        assert {sp.name for sp in exporter.get_finished_spans()} == {"POST /predict", "model call"}
    lines = [json.loads(x) for x in (tmp_path / "logs" / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 17 and [x["request_id"] for x in lines if "trace_id" in x] == ["kept"]


def test_tracing_is_off_unless_the_otel_variables_ask(small_model, tmp_path):
    "Without OTEL_* variables no request is traced; with OTEL_TRACES_EXPORTER=console a real server prints its spans."
    s, _ = small_model
    app = create_app(Settings(tracking_uri=s.tracking_uri, model_cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs"))
    stack = app.build_middleware_stack()
    assert app.state.svc.tracing is None and not isinstance(stack, Traced)
    with api_server(tmp_path, api_env(s, tmp_path, OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="sentiment-test",
                                      OTEL_BSP_SCHEDULE_DELAY="100"), wait="/ready") as api:
        assert api.post("/predict", json={"text": "hello"}, headers={"traceparent": CALLER}).status_code == 200
        time.sleep(1)
    out = api.output()
    assert '"name": "POST /predict"' in out and '"name": "model call"' in out and "4bf92f3577b34da6a3ce929d0e0e4736" in out
    assert '"service.name": "sentiment-test"' in out


def test_an_unknown_exporter_is_a_start_up_error(small_model, tmp_path):
    s, _ = small_model
    r = subprocess.run([sys.executable, "-m", "sentiment_mlops.serve", "--port", "0"], capture_output=True, text=True, timeout=120,
                       env={**api_env_strings(s, tmp_path), "OTEL_TRACES_EXPORTER": "zipkin"})
    assert r.returncode != 0 and "exports traces with otlp or console" in r.stderr


def api_env_strings(s, tmp_path) -> dict:
    import os
    return {**os.environ, **{k: str(v) for k, v in api_env(s, tmp_path).items()}}
