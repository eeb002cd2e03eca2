"""A test-only OTLP trace receiver: real OTLP/gRPC decoding with the official opentelemetry-proto messages.

    python otlp_sink.py GRPC_PORT HTTP_PORT

Receives ExportTraceServiceRequest on GRPC_PORT and serves the spans it got, flattened, as JSON at
`GET http://127.0.0.1:HTTP_PORT/spans`. Prints `ready` when both listen.
"""

import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

SPANS, LOCK = [], threading.Lock()


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


class Http(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        with LOCK:
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
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    server.start()
    http = ThreadingHTTPServer(("127.0.0.1", http_port), Http)
    print("ready", flush=True)
    http.serve_forever()


if __name__ == "__main__":
    main()
