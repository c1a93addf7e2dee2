"""The few places agentmesh relies on LangGraph's or Prefect's internals, where no public API does the job.

Each is isolated here and pinned by ``tests/test_upstream.py``, which fails when the upstream behaviour changes:

- ``RunnableCallable``: LangGraph's own node runnable. A node wrapped in it behaves as LangGraph's nodes do — the
  config and runtime are injected the same way, and ``trace=False`` keeps the wrapper out of callbacks (a
  ``RunnableLambda`` would add a run of its own to every stream of events).
- ``routed_node``: a compiled graph's node (``PregelNode``) that LangGraph reads as the node it was compiled from
  — its runnable (``bound``: subgraph discovery, ``get_graph()`` drawings and node ids), timeout, cache policy —
  but executes through another runnable. LangGraph executes ``PregelNode.node`` (``bound`` followed by the node's
  channel writers); only that one attribute changes.
- ``retry_config``: what LangGraph's own retry loop (``pregel._retry.run_with_retry``) changes in a node's config
  before another attempt, for a node retried by someone else (its Prefect task).
- Prefect's context variables: a ``ContextModel`` sets its variable only by being entered, for the length of a
  block. agentmesh needs to set one for a caller's whole scope (one API client shared by the goals of an event
  loop) or to clear one (a background task sent from inside a task run must not carry that task run's context).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph._internal._config import patch_configurable
from langgraph._internal._constants import (
    CONF,
    CONFIG_KEY_RESUMING,
    CONFIG_KEY_RUNTIME,
    CONFIG_KEY_SCRATCHPAD,
)
from langgraph._internal._runnable import RunnableCallable, RunnableSeq
from langgraph.pregel._algo import LazyAtomicCounter
from langgraph.pregel._read import PregelNode
from langgraph.runtime import Runtime

__all__ = ["RunnableCallable", "prefect_context", "retry_config", "routed_node"]

_CACHED = ("flat_writers", "node", "input_cache_key")  # PregelNode's cached properties (dropped by its copy())


class _RoutedNode(PregelNode):
    def __init__(self, *, runner: Runnable[Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner

    @cached_property
    def node(self) -> Runnable[Any, Any] | None:
        writers = self.flat_writers
        return RunnableSeq(self.runner, *writers, trace_policy=self.trace_policy) if writers else self.runner

    def copy(self, update: dict[str, Any]) -> PregelNode:
        attrs = {k: v for k, v in {**self.__dict__, **update}.items() if k not in _CACHED}
        return _RoutedNode(**attrs)


def routed_node(node: PregelNode, runner: Runnable[Any, Any], **update: Any) -> PregelNode:
    """``node`` executed through ``runner`` (called as the node's runnable would be), with ``update`` applied."""
    attrs = {k: v for k, v in {**node.__dict__, **update}.items() if k not in _CACHED}
    return _RoutedNode(runner=runner, **attrs)


def retry_config(config: RunnableConfig, attempt: int) -> RunnableConfig:
    """The node's config for its ``attempt``-th try (from 2), as LangGraph's retry loop makes it: the runtime's
    ``execution_info.node_attempt``, subgraphs told to resume, ``interrupt()`` calls counted from the first."""
    patch: dict[str, Any] = {CONFIG_KEY_RESUMING: True}
    runtime = config.get(CONF, {}).get(CONFIG_KEY_RUNTIME)
    if isinstance(runtime, Runtime) and runtime.execution_info is not None:
        patch[CONFIG_KEY_RUNTIME] = runtime.patch_execution_info(node_attempt=attempt)
    scratchpad = config.get(CONF, {}).get(CONFIG_KEY_SCRATCHPAD)
    if scratchpad is not None:
        patch[CONFIG_KEY_SCRATCHPAD] = dataclasses.replace(scratchpad, interrupt_counter=LazyAtomicCounter())
    return patch_configurable(config, patch)


@contextlib.contextmanager
def prefect_context(model: type, value: Any) -> Iterator[None]:
    """Inside the block, ``model.get()`` returns ``value`` (None clears it) for this task or thread."""
    var = model.__var__  # type: ignore[attr-defined]
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)
