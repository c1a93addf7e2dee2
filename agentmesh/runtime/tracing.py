"""OpenTelemetry traces of goals, exported over OTLP with the standard SDK and exporters.

On when ``AGENTMESH_OTEL`` names an endpoint (``http://host:4318``: HTTP/protobuf; ``grpc://host:4317``: gRPC),
or — ``AGENTMESH_OTEL`` empty — when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is
set (``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`` picks ``http/protobuf``, the default, or ``grpc``; headers,
certificates and timeouts are the exporters' own ``OTEL_EXPORTER_OTLP_*`` variables; the service name is
``OTEL_SERVICE_NAME`` or ``agentmesh``). ``AGENTMESH_OTEL=off`` turns them off.

Each goal is one trace following the GenAI semantic conventions (``agentmesh.core.observe`` makes the spans):

    invoke_workflow <graph>                        the goal; gen_ai.usage.*, agentmesh.status, agentmesh.cost_usd
      invoke_agent <role>                          one per node (parallel steps are siblings)
        chat <model>                               one per model call; gen_ai.usage.input_tokens/output_tokens
        execute_tool <tool>                        one per gateway call; agentmesh.tool.status, agentmesh.tool.reason

Contents (the goal, replies, tool arguments and results) stay off the spans unless
``AGENTMESH_OTEL_CAPTURE_CONTENT`` (or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``) is true. The
tracer provider is agentmesh's own, not the global one: Prefect's own run spans stay off, and a process that has
its own tracing keeps it. The OpenTelemetry packages are the ``otel`` extra (``pip install 'agentmesh[otel]'``).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from agentmesh.core import observe
from agentmesh.core.exceptions import ConfigError
from agentmesh.core.settings import Settings

__all__ = ["flush_tracing", "setup_tracing", "tracing_target"]

_configured = False
_provider: Any = None


def tracing_target(settings: Settings) -> tuple[str, str | None] | None:
    """(protocol, endpoint or None for the exporter's own variables) of the traces; None when they are off."""
    value = (settings.otel or "").strip()
    env_protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if value.lower() in ("off", "false", "0", "no"):
        return None
    if not value:
        if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
            return None
        return _protocol(env_protocol), None
    if value.lower() in ("on", "true", "1", "yes"):
        return _protocol(env_protocol), None
    parts = urlsplit(value)
    if parts.scheme == "grpc" and parts.hostname:
        return "grpc", f"http://{parts.netloc}"
    if parts.scheme in ("http", "https") and parts.hostname:
        protocol = _protocol(env_protocol)
        if protocol == "grpc":
            return protocol, value
        return protocol, value if parts.path not in ("", "/") else value.rstrip("/") + "/v1/traces"
    raise ConfigError(f"AGENTMESH_OTEL must be an OTLP endpoint (http://host:4318, grpc://host:4317), on or off, "
                      f"not {value!r}")


def _protocol(value: str) -> str:
    if value in ("http/protobuf", "grpc"):
        return value
    raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or grpc, not {value!r}")


def setup_tracing(settings: Settings) -> None:
    """Install the tracer the settings ask for, once per process (later settings do not switch it)."""
    global _configured, _provider
    if _configured:
        return
    target = tracing_target(settings)
    _configured = True
    if target is None:
        return
    protocol, endpoint = target
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        _configured = False
        raise ConfigError("OpenTelemetry traces need the otel extra: pip install 'agentmesh[otel]'") from None
    exporter: Any
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(endpoint=endpoint, insecure=True) if endpoint and endpoint.startswith("http://") \
            else GrpcExporter(endpoint=endpoint)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter(endpoint=endpoint)
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "agentmesh"})
    _provider = TracerProvider(resource=resource)  # flushed and shut down at exit (shutdown_on_exit)
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    observe.install(_provider.get_tracer("agentmesh", _version()),
                    capture_content=settings.otel_capture_content)


def flush_tracing(timeout_s: float = 10.0) -> bool:
    """Export the spans still buffered now (the end of a test, a short-lived process); True when done."""
    return bool(_provider.force_flush(int(timeout_s * 1000))) if _provider is not None else True


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentmesh")
    except PackageNotFoundError:
        return None
