"""A real OTLP trace receiver for tests: OTLP/HTTP (protobuf, ``POST /v1/traces``) and OTLP/gRPC
(``TraceService/Export``) on 127.0.0.1, decoding each ``ExportTraceServiceRequest`` with the opentelemetry-proto
messages the exporters encode, and keeping the spans as plain dicts to read back.

    with OtlpReceiver() as receiver:           # receiver.http_url, receiver.grpc_url
        ...                                    # OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_url
        spans = receiver.wait_for(lambda spans: any(s["name"] == "invoke_workflow mesh" for s in spans))
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest) -> list[dict[str, Any]]:
    found = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append({
                    "name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex() or None, "kind": KINDS.get(span.kind, span.kind),
                    "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                    "attributes": {kv.key: _value(kv.value) for kv in span.attributes},
                    "status": {0: "unset", 1: "ok", 2: "error"}.get(span.status.code), "status_message":
                    span.status.message, "scope": scope_spans.scope.name, "resource": resource,
                })
    return found


class OtlpReceiver:
    """Both OTLP transports on free ports of 127.0.0.1; ``spans`` holds what arrived, ``raw`` the request bodies."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.requests = {"http": 0, "grpc": 0}
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None
        self._grpc: Any = None
        self.http_url = self.grpc_url = ""

    def _add(self, transport: str, body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        with self._lock:
            self.raw.append(body)
            self.requests[transport] += 1
            self.spans.extend(spans_of(request))

    def __enter__(self) -> OtlpReceiver:
        import grpc

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or "protobuf" not in (self.headers.get("content-type") or ""):
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver._add("http", body)
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.http_url = f"http://127.0.0.1:{self._http.server_address[1]}"

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                receiver._add("grpc", request.SerializeToString())
                return trace_service_pb2.ExportTraceServiceResponse()

        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self._grpc)
        port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self.grpc_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace=None)

    def wait_for(self, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """The spans received once ``done(spans)`` holds (or, after ``timeout_s``, as they are)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                spans = list(self.spans)
            if done(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.1)
