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
  before another attempt, for a node retried by someone else (its Prefect task): the failed attempt's writes
  dropped, too (the node's task collects them in the deque whose ``extend`` is the config's ``CONFIG_KEY_SEND``).
- ``timed_attempt``: one attempt of a node under its ``TimeoutPolicy``, timed as LangGraph's retry loop times
  each attempt (``pregel._retry.arun_with_retry``: its run/idle watchdogs, progress from writes, stream and
  callbacks, writes dropped on a timeout, the timed-attempt observer), for a node whose attempts are retried by
  its Prefect task.
- ``start_prefect_services``: Prefect starts its process-wide services (events, API logs, a concurrency-lease
  worker per set of tags) lazily, from inside the first task run that needs one, and the service keeps a copy of
  that caller's context (its asyncio task's and its shutdown call's) for the life of the process — and with it
  the task run, its state and result: a failed node's exception, whose traceback holds the graph run's loop.
  Started first from an empty context, with the keys the task engine will look them up by, they hold nothing.
- Prefect's context variables: a ``ContextModel`` sets its variable only by being entered, for the length of a
  block. agentmesh needs to set one for a caller's whole scope (one API client shared by the goals of an event
  loop) or to clear one (a background task sent from inside a task run must not carry that task run's context).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections import deque
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph._internal._config import patch_configurable
from langgraph._internal._constants import (
    CONF,
    CONFIG_KEY_RESUMING,
    CONFIG_KEY_RUNTIME,
    CONFIG_KEY_SCRATCHPAD,
    CONFIG_KEY_SEND,
    CONFIG_KEY_TASK_ID,
)
from langgraph._internal._runnable import RunnableCallable, RunnableSeq
from langgraph._internal._timeout import sync_timeout_unsupported
from langgraph.errors import GraphBubbleUp
from langgraph.pregel._algo import LazyAtomicCounter
from langgraph.pregel._read import PregelNode
from langgraph.pregel._retry import (
    _arun_with_timeout,
    _finish_timed_attempt,
    _resolve_timeout,
    _start_timed_attempt,
)
from langgraph.runtime import Runtime
from langgraph.types import TimeoutPolicy

__all__ = ["RunnableCallable", "prefect_context", "retry_config", "routed_node", "start_prefect_services",
           "sync_timeout_unsupported", "timed_attempt"]

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
    _task_writes(config).clear()  # as LangGraph's loop clears `task.writes` before every attempt
    return patch_configurable(config, patch)


def _task_writes(config: RunnableConfig) -> deque[Any]:
    """The node's task's writes: LangGraph hands a node ``CONFIG_KEY_SEND = task.writes.extend``."""
    send = config.get(CONF, {}).get(CONFIG_KEY_SEND)
    writes = getattr(send, "__self__", None)
    return writes if isinstance(writes, deque) else deque()


@dataclasses.dataclass
class _Attempt:
    """What LangGraph's timing of an attempt reads of the task (``PregelExecutableTask``'s attributes)."""

    name: str
    id: str
    proc: Runnable[Any, Any]
    input: Any
    writes: deque[Any]


async def timed_attempt(name: str, proc: Runnable[Any, Any], input: Any, config: RunnableConfig,
                        timeout: TimeoutPolicy) -> Any:
    """``proc.ainvoke(input, config)`` under ``timeout``, as one attempt of LangGraph's retry loop: a
    ``NodeTimeoutError`` when it runs out (the attempt cancelled, its writes dropped), the timed-attempt observer
    told of its start and finish."""
    attempt = _Attempt(name, str(config.get(CONF, {}).get(CONFIG_KEY_TASK_ID, "")), proc, input,
                       _task_writes(config))
    resolved = _resolve_timeout(timeout)
    context = _start_timed_attempt(attempt, config, resolved)  # type: ignore[arg-type]
    try:
        result = await _arun_with_timeout(attempt, config, resolved, context, stream=False)  # type: ignore[arg-type]
    except GraphBubbleUp:
        _finish_timed_attempt(config, context)
        raise
    except BaseException as error:
        _finish_timed_attempt(config, context, error)
        raise
    _finish_timed_attempt(config, context)
    return result


@contextlib.contextmanager
def prefect_context(model: type, value: Any) -> Iterator[None]:
    """Inside the block, ``model.get()`` returns ``value`` (None clears it) for this task or thread."""
    var = model.__var__  # type: ignore[attr-defined]
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def start_prefect_services(task_tags: Iterable[str]) -> None:
    """Prefect's services a task run with ``task_tags`` (called here) will use, started — when not running yet —
    from an empty context, so that none is first started from inside the task run and keeps its context."""
    from prefect.context import TagsContext

    # the task run's tags, as the task engine makes them (task_engine: task.tags | TagsContext tags); the
    # engine acquires concurrency slots for them through the lease service of that set of names
    tags = set(task_tags) | set(TagsContext.get().current_tags or ())
    contextvars.Context().run(_start_services, frozenset(f"tag:{tag}" for tag in tags))


def _start_services(limit_names: frozenset[str]) -> None:
    from prefect.concurrency.services import ConcurrencySlotAcquisitionWithLeaseService
    from prefect.context import get_settings_context
    from prefect.events.worker import EventsWorker, should_emit_events
    from prefect.logging.handlers import APILogWorker

    if limit_names:
        ConcurrencySlotAcquisitionWithLeaseService.instance(limit_names)
    if should_emit_events():  # as prefect.events.utilities.emit_event
        EventsWorker.instance()
    if get_settings_context().settings.logging.to_api.enabled:  # as prefect.logging.handlers.APILogHandler
        APILogWorker.instance()
