"""A test-only OTLP receiver of traces and metrics: real OTLP/gRPC decoding with the official opentelemetry-proto
messages.

    python otlp_sink.py GRPC_PORT HTTP_PORT

Receives ExportTraceServiceRequest and ExportMetricsServiceRequest on GRPC_PORT and serves, as JSON:
- `GET http://127.0.0.1:HTTP_PORT/spans`: the spans it got, flattened;
- `GET http://127.0.0.1:HTTP_PORT/metrics`: one row per metric export (service, instance, metric names) under
  `exports`, and the latest data point of each series (service, instance, metric name, attributes) under `points`.
Prints `ready` when both listen.
"""

import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

SPANS, LOCK = [], threading.Lock()
# Metrics are cumulative: the latest point of a series is its total so far.
EXPORTS, POINTS = [], {}


def attributes(kvs):
    out = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
        if isinstance(out[kv.key], bytes):
            out[kv.key] = out[kv.key].hex()
    return out


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        rows = []
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    rows.append({"service": resource.get("service.name"), "name": s.name,
                                 "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                                 "parent_span_id": s.parent_span_id.hex(), "attributes": attributes(s.attributes)})
        with LOCK:
            SPANS.extend(rows)
        return trace_service_pb2.ExportTraceServiceResponse()


def point_row(kind, p):
    row = {"type": kind, "attributes": attributes(p.attributes), "time": p.time_unix_nano,
           "start": p.start_time_unix_nano}
    if kind == "histogram":
        row.update(count=p.count, sum=p.sum, bounds=list(p.explicit_bounds), buckets=list(p.bucket_counts))
    else:
        which = p.WhichOneof("value")
        row["value"] = getattr(p, which) if which else None
    return row


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):
        exports, points = [], {}
        for rm in request.resource_metrics:
            resource = attributes(rm.resource.attributes)
            service, instance = resource.get("service.name"), resource.get("service.instance.id")
            names = []
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    names.append(m.name)
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    for p in data.data_points:
                        row = {"service": service, "instance": instance, "name": m.name, "unit": m.unit,
                               **point_row(kind, p)}
                        if kind == "sum":
                            row["monotonic"] = data.is_monotonic
                        points[(instance, m.name, json.dumps(row["attributes"], sort_keys=True))] = row
            exports.append({"service": service, "instance": instance, "metrics": names})
        with LOCK:
            EXPORTS.extend(exports)
            POINTS.update(points)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class Http(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        with LOCK:
            if self.path == "/metrics":
                body = json.dumps({"exports": EXPORTS, "points": list(POINTS.values())}).encode()
            else:
                body = json.dumps(SPANS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    grpc_port, http_port = int(sys.argv[1]), int(sys.argv[2])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    server.start()
    http = ThreadingHTTPServer(("127.0.0.1", http_port), Http)
    print("ready", flush=True)
    http.serve_forever()


if __name__ == "__main__":
    main()
