"""The few places agentmesh relies on LangGraph's or Prefect's internals, where no public API does the job.

Each is isolated here and pinned by ``tests/test_upstream.py``, which fails when the upstream behaviour changes:

- ``RunnableCallable``: LangGraph's own node runnable. A node wrapped in it behaves as LangGraph's nodes do — the
  config and runtime are injected the same way, and ``trace=False`` keeps the wrapper out of callbacks (a
  ``RunnableLambda`` would add a run of its own to every stream of events).
- Prefect's context variables: a ``ContextModel`` sets its variable only by being entered, for the length of a
  block. agentmesh needs to set one for a caller's whole scope (one API client shared by the goals of an event
  loop) or to clear one (a background task sent from inside a task run must not carry that task run's context).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from langgraph._internal._runnable import RunnableCallable

__all__ = ["RunnableCallable", "prefect_context"]


@contextlib.contextmanager
def prefect_context(model: type, value: Any) -> Iterator[None]:
    """Inside the block, ``model.get()`` returns ``value`` (None clears it) for this task or thread."""
    var = model.__var__  # type: ignore[attr-defined]
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)
