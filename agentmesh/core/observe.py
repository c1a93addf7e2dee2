"""What a goal's agents do, told where people look: Prefect's run logger (the flow run's Logs tab) and, when
traces are configured (``agentmesh.runtime.tracing``), OpenTelemetry spans that follow the GenAI semantic
conventions (``invoke_workflow`` → ``invoke_agent`` → ``chat`` / ``execute_tool``).

Both are called from the same few places: the goal (``agentmesh.runtime.goal``), each node
(``agentmesh.runtime.compile``), each model call (``agentmesh.agents.agent``) and each gateway call
(``agentmesh.gateway``). With traces off, ``span`` yields None at once: OpenTelemetry is never imported.

Spans name their parent explicitly (a context variable of this module), not through OpenTelemetry's current
context: Prefect's task engine makes its own (non-recording) run span current inside each task run, which would
otherwise cut every node's span off its goal's trace.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["capture_content", "current_span", "install", "redact", "run_log", "set_attributes", "span", "trace_ids", "tracing"]

_tracer: Any = None
_capture_content = False
_parent: ContextVar[Any] = ContextVar("agentmesh_span", default=None)

# Credentials as they appear in URLs, headers and messages; the configured key itself is removed by value too.
_SECRETS = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|(?:api[-_]?key|token|password|secret)\s*[=:]\s*\S+)",
                      re.IGNORECASE)


def install(tracer: Any, *, capture_content: bool = False) -> None:
    """Send spans to ``tracer`` (an OpenTelemetry tracer); None turns traces off."""
    global _tracer, _capture_content
    _tracer, _capture_content = tracer, capture_content


def tracing() -> bool:
    """True when goals are traced."""
    return _tracer is not None


def capture_content() -> bool:
    """True when spans may carry contents (goal, replies, tool arguments and results)."""
    return _tracer is not None and _capture_content


@contextlib.contextmanager
def span(name: str, attributes: dict[str, Any], *, client: bool = False) -> Iterator[Any]:
    """A span named ``name`` under the current agentmesh span (a new trace at the top), or None when traces are
    off. An exception leaving it marks it failed (``error.type``) and goes on."""
    if _tracer is None:
        yield None
        return
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    parent = _parent.get()
    context = trace.set_span_in_context(parent) if parent is not None else None
    current = _tracer.start_span(name, context=context, kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
                                 attributes=_clean(attributes))
    token = _parent.set(current)
    try:
        yield current
    except BaseException as exc:
        current.set_attribute("error.type", type(exc).__name__)
        current.set_status(Status(StatusCode.ERROR, redact(str(exc))[:500]))
        raise
    finally:
        _parent.reset(token)
        current.end()


def current_span() -> Any:
    """The innermost agentmesh span still open here; None when traces are off or there is none."""
    found = _parent.get()
    return found if found is not None and found.is_recording() else None


def set_attributes(current: Any, attributes: dict[str, Any]) -> None:
    """Add attributes to a span ``span`` yielded (nothing when it yielded None or has ended)."""
    if current is not None and current.is_recording():
        current.set_attributes(_clean(attributes))


def trace_ids(current: Any) -> tuple[str, str] | None:
    """The trace and span ids of a span, as hex (what a trace backend searches for)."""
    if current is None:
        return None
    context = current.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with credentials replaced by ``****``: known patterns, and each of ``secrets`` by value."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "****")
    return _SECRETS.sub("****", text)


def run_log(message: str, *args: Any, level: int = logging.INFO) -> None:
    """Log through Prefect's run logger (the flow run's Logs tab); nothing outside a flow or task run."""
    try:
        from prefect.logging.loggers import get_run_logger

        logger = get_run_logger()
    except Exception:  # no run context: a gateway used on its own, a test
        return
    logger.log(level, message, *args)
