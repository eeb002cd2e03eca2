"""Observability (issue 5): traces, logs and metrics. One request is one trace across the gateway and shard processes, and
every process pushes its metrics, both over OTLP/gRPC to a real receiver (tests/otlp_sink.py, official
opentelemetry-proto messages)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from api import Api
from harness import free_port, make_server

pytestmark = pytest.mark.targets("split")


@pytest.fixture
def sink():
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "otlp_sink.py"), str(grpc_port),
                             str(http_port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield f"http://127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}/spans", f"http://127.0.0.1:{http_port}/metrics"
    proc.kill()
    proc.wait()


@pytest.fixture
def traced(target, sink, monkeypatch):
    # The batch span processor exports every 100 ms instead of 5 s (OpenTelemetry's standard variable).
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    server = make_server(target, "traced", {"otlp_endpoint": sink[0]})
    yield server
    server.cleanup()


def spans_of(url, trace_id=None, deadline=20.0):
    end = time.monotonic() + deadline
    while True:
        spans = requests.get(url, timeout=5).json()
        if trace_id is None or any(s["trace_id"] == trace_id and s["service"] == "kinto-shard" for s in spans):
            return spans
        if time.monotonic() > end:
            return spans
        time.sleep(0.2)


def test_one_request_one_trace_across_processes(traced, sink):
    api = Api(traced, "alice")
    bid = api.create_bucket()
    deadline = time.monotonic() + 20
    gateway = []
    while not gateway and time.monotonic() < deadline:
        spans = requests.get(sink[1], timeout=5).json()
        gateway = [s for s in spans if s["service"] == "kinto-gateway" and s["name"] == "request"
                   and s["attributes"].get("http.method") == "PUT"]
        time.sleep(0.2)
    assert gateway, "the gateway exported its request span"
    root = gateway[0]
    assert root["attributes"]["http.route"] == "bucket" and root["attributes"]["http.status_code"] == 201
    assert root["parent_span_id"] in ("", "0" * 16), "the request span is the trace's root"
    spans = spans_of(sink[1], root["trace_id"])
    trace = [s for s in spans if s["trace_id"] == root["trace_id"]]
    shard = [s for s in trace if s["service"] == "kinto-shard" and s["name"] == "shard.execute"]
    assert shard, f"the shard process exported a span of the same trace: {trace}"
    assert shard[0]["parent_span_id"] == root["span_id"], "the shard's span is a child of the gateway's"
    commits = [s for s in trace if s["name"] == "storage.commit"]
    assert commits and commits[0]["parent_span_id"] == shard[0]["span_id"], "storage under the shard span"
    assert bid not in str(root["attributes"]), "no bucket id in the request span"


def test_metrics_pushed_over_otlp_by_every_process(target, sink):
    """With `otlp_endpoint`, the gateway and each shard process push their metrics to the collector, cumulative."""
    server = make_server(target, "otlpmetrics", {"otlp_endpoint": sink[0], "otlp_metrics_interval_ms": 200})
    try:
        api = Api(server, "alice")
        bid = api.create_bucket()
        cid = api.create_collection(bid)
        records = 4
        for _ in range(records):
            api.create_record(bid, cid)

        def series(points, service, name, **labels):
            return [p for p in points if p["service"] == service and p["name"] == name
                    and all(p["attributes"].get(k) == v for k, v in labels.items())]

        posted = {"route": "records", "method": "POST", "status": "201", "errno": "0"}
        deadline = time.monotonic() + 20
        while True:
            got = requests.get(sink[2], timeout=5).json()
            points = got["points"]
            gateway_posts = sum(p["value"] for p in series(points, "kinto-gateway", "kinto_requests_total", **posted))
            shard_posts = sum(p["count"] for p in series(points, "kinto-shard", "kinto_shard_operation_seconds",
                                                         method="post", outcome="ok"))
            if (gateway_posts, shard_posts) == (records, records) or time.monotonic() > deadline:
                break
            time.sleep(0.2)

        exporters = {(e["service"], e["instance"]) for e in got["exports"]}
        assert {s for s, _ in exporters} == {"kinto-gateway", "kinto-shard"}, exporters
        shard_instances = {i for s, i in exporters if s == "kinto-shard"}
        assert len(shard_instances) == server.count, f"every shard process exports: {exporters}"

        # The gateway: a monotonic request counter with exactly the requests made, and their latency histogram.
        counter = series(points, "kinto-gateway", "kinto_requests_total", **posted)
        assert counter and all(p["type"] == "sum" and p["monotonic"] for p in counter), counter
        assert gateway_posts == records, counter
        latency = series(points, "kinto-gateway", "kinto_request_seconds", route="records")
        assert len(latency) == 1 and latency[0]["type"] == "histogram" and latency[0]["unit"] == "s", latency
        hist = latency[0]
        assert hist["count"] == records and hist["sum"] > 0
        assert sum(hist["buckets"]) == hist["count"] and len(hist["buckets"]) == len(hist["bounds"]) + 1, hist
        assert 0 < hist["start"] <= hist["time"], "cumulative since the process started"

        # The shard that owns the bucket: one `post` operation per record, and the storage commits behind them.
        ops = series(points, "kinto-shard", "kinto_shard_operation_seconds", method="post", outcome="ok")
        assert ops and all(p["type"] == "histogram" for p in ops), ops
        assert shard_posts == records, ops
        commits = series(points, "kinto-shard", "kinto_storage_commit_seconds")
        assert sum(p["count"] for p in commits) >= records + 2, commits  # bucket, collection, records
        assert series(points, "kinto-shard", "kinto_shard_queue_depth"), "the queue depth gauge"
        assert bid not in str(points) and cid not in str(points), "no ids in metric attributes"
    finally:
        server.cleanup()


@pytest.mark.targets("single")
def test_json_request_log_lines(target):
    """`log_format = "json"`: one JSON object per line, one `request` line per request, without user or bucket ids."""
    import json

    server = make_server(target, "jsonlog", {"log_format": "json"})
    try:
        api = Api(server, "alice")
        bid = api.create_bucket()
        assert api.get(f"/buckets/{bid}/collections/missing").status_code == 404
        server.procs[0].popen.send_signal(15)
        server.procs[0].popen.wait(10)
        lines = [l for l in server.procs[0].log.read_text().splitlines() if l.startswith("{")]
        events = [json.loads(l) for l in lines]
        requests_logged = [e["fields"] for e in events if e.get("target") == "kinto::request"]
        put = [f for f in requests_logged if f["method"] == "PUT" and f["route"] == "bucket"]
        assert put and put[-1]["status"] == 201 and put[-1]["duration_ms"] >= 0
        missing = [f for f in requests_logged if f["route"] == "collection" and f["status"] == 404]
        assert missing and missing[-1]["errno"] == 110
        text = "\n".join(lines)
        assert bid not in text and api.principal not in text, "no bucket or user ids in the logs"
    finally:
        server.cleanup()


@pytest.mark.targets("single")
def test_prometheus_metrics(target, api):
    import re

    server = make_server(target, "metrics", {"includes": "kinto.plugins.prometheus"})
    try:
        alice = Api(server, "alice")
        bid = alice.create_bucket()
        alice.get(f"/buckets/{bid}/collections/missing")
        r = requests.get(f"{server.url}/__metrics__", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        text = r.text
        assert re.search(r'kinto_requests_total\{errno="0",method="PUT",route="bucket",status="201"\} 1', text)
        assert re.search(r'kinto_requests_total\{errno="110",method="GET",route="collection",status="404"\} 1', text)
        assert re.search(r'kinto_request_seconds_count\{route="bucket"\} \d', text)
        assert re.search(r'kinto_shard_operation_seconds_count\{method="put",outcome="ok",shard="\d+"\} \d', text)
        assert re.search(r'kinto_shard_operation_seconds_count\{method="get",outcome="110",shard="\d+"\} [1-9]', text)
        assert re.search(r"kinto_storage_commit_seconds_count [1-9]", text)
        assert "kinto_shard_queue_depth" in text
        # The shard caches: the second read of the same bucket's child finds its parent cached, and the
        # second write to a list stamps it from the timestamp the first one left in the cache.
        alice.get(f"/buckets/{bid}/collections/missing")
        cid = alice.create_collection(bid)
        for _ in range(4):
            alice.create_record(bid, cid)
        # A walk of pages of one: the third and fourth are read ahead while this client waits a little.
        r = alice.get(f"/buckets/{bid}/collections/{cid}/records?_limit=1")
        while "Next-Page" in r.headers:
            time.sleep(0.3)
            r = alice.session.get(r.headers["Next-Page"], timeout=10)
            assert r.status_code == 200, r.text
        text = requests.get(f"{server.url}/__metrics__", timeout=10).text
        assert re.search(r'kinto_shard_cache_total\{cache="read_ahead",result="hit"\} [1-9]', text), \
            [line for line in text.splitlines() if "read_ahead" in line]
        assert re.search(r'kinto_shard_cache_total\{cache="groups",result="(hit|miss)"\} [1-9]', text)
        assert re.search(r'kinto_shard_cache_total\{cache="parents",result="hit"\} [1-9]', text), \
            [line for line in text.splitlines() if "cache" in line]
        assert re.search(r'kinto_shard_cache_total\{cache="timestamps",result="hit"\} [1-9]', text), \
            [line for line in text.splitlines() if "cache" in line]
        assert bid not in text, "no bucket ids in metric labels"
        assert "prometheus" in alice.get("/").json()["capabilities"]
    finally:
        server.cleanup()
    # Off unless the plugin is included, as in Kinto.
    assert api.get("/__metrics__").status_code == 404
