"""``compile``: any LangGraph ``StateGraph`` made durable — every node a Prefect task named for the node and
tagged with its role.

    from agentmesh import compile
    graph = compile(builder, checkpointer=InMemorySaver())

The graph is compiled by LangGraph itself, then each node is executed through its Prefect task; everything else
LangGraph knows of a node stays the node's own — its runnable (so subgraphs are found: ``get_subgraphs()``,
``get_state(subgraphs=True)``, ``update_state`` into a subgraph, ``get_graph(xray=...)``, node ids), the
compile-time check of its timeout, cache policy, metadata.

Retries: one layer, the node's Prefect task (LangGraph's own retry loop is not used). How many: ``retries=`` given
to ``compile``, else the node's LangGraph ``RetryPolicy`` (one or several, or ``set_node_defaults``) as LangGraph
applies it — the first policy whose ``retry_on`` accepts the error decides, ``max_attempts`` counts every try,
the wait is its backoff (with its jitter) and the node sees ``runtime.execution_info.node_attempt`` — else, inside
a goal, the goal's ``settings.node_retries`` (one second apart), else none: outside a goal a node without a policy
runs once, as in LangGraph. Never retried, whatever the count: the model transport giving up (its own retry layer
already ran), a budget, a policy refusal or bad input — retrying cannot help and would only multiply calls. An
``interrupt()`` inside a node is a pause, not a failure: the task completes and the interrupt is re-raised outside
it, so Prefect neither retries it nor shows a crash.

Timeouts: a node's ``TimeoutPolicy`` (``add_node(..., timeout=...)`` or ``set_node_defaults``) times each attempt
inside the task run, as LangGraph times each attempt — so a ``NodeTimeoutError`` is retried when the policy says
so, and the Prefect task run's own start-up is not on the node's clock. A ``Send(..., timeout=...)`` overriding
the node's timeout is applied by LangGraph, around the node's whole task run (retries included): LangGraph does
not tell the node which timeout its ``Send`` carried.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.constants import START
from langgraph.errors import GraphBubbleUp
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy

from agentmesh.agents.context import RunContext, StepScope, active_run, running, stepping
from agentmesh.core import observe
from agentmesh.core.exceptions import RunError, UserError
from agentmesh.core.settings import Settings, get_settings
from agentmesh.models import is_transport_failure
from agentmesh.persistence.owner import this_process
from agentmesh.persistence.runs import end_step, start_step
from agentmesh.runtime._upstream import (
    RunnableCallable,
    prefect_context,
    retry_config,
    routed_node,
    start_prefect_services,
    sync_timeout_unsupported,
    timed_attempt,
)
from agentmesh.runtime.prefect import configure_prefect, shared_clients

__all__ = ["Host", "compile", "durable_graph", "hosts"]

_GOAL_RETRY_WAIT_S = 1.0  # between a goal's node_retries (a node without a RetryPolicy)


@dataclasses.dataclass
class _Bubble:
    """A LangGraph control-flow signal (interrupt, parent command) carried out of a Prefect task."""

    error: GraphBubbleUp


def compile(graph: StateGraph, *, checkpointer: BaseCheckpointSaver | None = None, retries: int | None = None,
            settings: Settings | None = None, **compile_kwargs: Any) -> CompiledStateGraph:
    """Compile a StateGraph with every node run as a Prefect task named for the node, tagged with its role.

    The role comes from the node's metadata (``add_node(..., metadata={"agent": "analyst"})``). Works on any
    StateGraph and takes ``StateGraph.compile``'s arguments; LangGraph compiles it (and checks it) as it would
    plainly. ``settings`` name the Prefect server; by default, the environment's.
    """
    configure_prefect(settings or get_settings())
    compiled = graph.compile(checkpointer=checkpointer, **compile_kwargs)
    for name, node in list(compiled.nodes.items()):
        if name != START and name in graph.nodes:
            compiled.nodes[name] = _durable_node(name, node, retries)
    return compiled


_durable_graphs: weakref.WeakKeyDictionary[StateGraph, CompiledStateGraph] = weakref.WeakKeyDictionary()


def durable_graph(graph: StateGraph, settings: Settings) -> CompiledStateGraph:
    """The graph compiled durably once per builder and process; a goal attaches its checkpointer with
    ``copy()`` (wrapping every node in tasks and compiling cost ~30 ms a goal). Retries are the goal's."""
    found = _durable_graphs.get(graph)
    if found is None:
        found = _durable_graphs[graph] = compile(graph, settings=settings)
    return found


def _durable_node(name: str, node: Any, retries: int | None) -> Any:
    from prefect import task
    from prefect.cache_policies import NONE
    from prefect.context import TaskRunContext
    from prefect.utilities.annotations import quote

    original = node.bound
    role = (node.metadata or {}).get("agent")
    policies = _policies(node.retry_policy)
    timeout = node.timeout

    def count() -> int:
        if retries is not None:
            return retries
        if policies:
            return max(p.max_attempts for p in policies) - 1
        run = active_run()
        return run.settings.node_retries if run is not None else 0

    def wait_before_retry(task_run: Any, state: Any) -> float | None:
        """Seconds to wait before trying again; None: not retried."""
        # The task engine wraps the exception as the Failed state's data (reading `state.result()` here would
        # return a coroutine in an async task).
        error = state.data if isinstance(state.data, Exception) else None
        if error is None or isinstance(error, (UserError, RunError)) or is_transport_failure(error):
            return None
        if not policies:
            return _GOAL_RETRY_WAIT_S
        policy = next((p for p in policies if _accepts(p.retry_on, error)), None)
        if policy is None or (retries is None and task_run.run_count >= policy.max_attempts):
            return None
        return _backoff(policy, task_run.run_count)

    def retry_sync(task: Any, task_run: Any, state: Any) -> bool:
        wait = wait_before_retry(task_run, state)
        if wait is not None:
            time.sleep(wait)  # as LangGraph's retry loop waits (the task's own retry delay is 0)
        return wait is not None

    async def retry_async(task: Any, task_run: Any, state: Any) -> bool:
        wait = wait_before_retry(task_run, state)
        if wait is not None:
            await asyncio.sleep(wait)
        return wait is not None

    def attempt_config(config: Any) -> Any:
        ctx = TaskRunContext.get()
        attempt = ctx.task_run.run_count if ctx is not None else 1
        return retry_config(config, attempt) if attempt > 1 else config

    tags = ["agentmesh", role or "router"]
    options = dict(name=name, tags=tags, retry_delay_seconds=0, cache_policy=NONE,
                   persist_result=False)

    async def run_async(state: Any, handed: _Handed) -> Any:
        config = attempt_config(handed.config)
        with _langgraph_config(config), _step_scope(name, role, config):
            try:
                if timeout is not None:  # this attempt timed, as LangGraph times each attempt
                    return await timed_attempt(name, original, state, config, timeout)
                return await original.ainvoke(state, config)
            except GraphBubbleUp as signal:
                return _Bubble(signal)

    def run_sync(state: Any, handed: _Handed) -> Any:
        config = attempt_config(handed.config)
        with _langgraph_config(config), _step_scope(name, role, config):
            try:
                return original.invoke(state, config)
            except GraphBubbleUp as signal:
                return _Bubble(signal)

    base_async = task(run_async, retry_condition_fn=retry_async, **options)  # type: ignore[call-overload]
    base_sync = task(run_sync, retry_condition_fn=retry_sync, **options)  # type: ignore[call-overload]
    by_retries: dict[int, tuple[Any, Any]] = {}

    def tasks() -> tuple[Any, Any]:
        n = count()
        if n not in by_retries:
            by_retries[n] = (base_async.with_options(retries=n), base_sync.with_options(retries=n))
        return by_retries[n]

    async def afunc(state: Any, config: RunnableConfig) -> Any:
        # quote(): Prefect must not walk the state and config looking for futures (the config holds the
        # checkpointer and callbacks); the task gets them as they are.
        host = _host(config)
        opened = await host.open(state) if host else None
        with _hosted(opened) if opened else contextlib.nullcontext(), _langgraph_config(None), \
                _handed(config) as handed:
            start_prefect_services(tags)
            async with shared_clients():  # one API client per event loop, as in a goal (wide fan-outs)
                return _unwrap(await tasks()[0](quote(state), quote(handed)))

    def func(state: Any, config: RunnableConfig) -> Any:
        from prefect.context import SyncClientContext

        if timeout is not None:  # an async node with a timeout, run by invoke(): LangGraph refuses it too
            raise sync_timeout_unsupported(name)
        host = _host(config)
        opened = asyncio.run_coroutine_threadsafe(host.open(state), host.loop).result() if host else None
        # SyncClientContext: one client, ~4 ms a task instead of ~26 ms (a new client per task)
        with _hosted(opened) if opened else contextlib.nullcontext(), SyncClientContext.get_or_create(), \
                _langgraph_config(None), _handed(config) as handed:
            start_prefect_services(tags)
            return _unwrap(tasks()[1](quote(state), quote(handed)))

    # The node keeps its runnable and policies for LangGraph to read; it executes through the task, which does
    # the retrying (LangGraph's own retry loop would be a second layer) and times each attempt (LangGraph would
    # time the whole task run, retries included).
    runner = RunnableCallable(func, afunc, name=name, trace=False)
    return routed_node(node, runner, retry_policy=None, timeout=None)


def _policies(retry_policy: RetryPolicy | Sequence[RetryPolicy] | None) -> tuple[RetryPolicy, ...]:
    """A node's retry policies: none, one, or several (a ``RetryPolicy`` is itself a tuple, a NamedTuple)."""
    if retry_policy is None:
        return ()
    if isinstance(retry_policy, RetryPolicy):
        return (retry_policy,)
    return tuple(retry_policy)


class Host(Protocol):
    """Where a graph run started outside agentmesh (by LangGraph's server: ``agentmesh.runtime.served``) gets its
    agentmesh run: ``open(state)`` establishes it on the first node (the record, the run context, the Prefect flow
    run) and returns the run and its flow run's context; ``loop`` is the event loop it runs on."""

    loop: asyncio.AbstractEventLoop

    async def open(self, state: Any) -> tuple[RunContext, Any]: ...


hosts: dict[str, Host] = {}
"""Thread id -> the host of the graph run on that thread, while LangGraph's server runs it."""


def _host(config: Any) -> Host | None:
    """The host a node with no agentmesh run active establishes its run from: its thread's (thread id → run id)."""
    if active_run() is not None:
        return None
    thread = ((config or {}).get("configurable") or {}).get("thread_id")
    return hosts.get(str(thread)) if thread is not None else None


@contextlib.contextmanager
def _hosted(opened: tuple[RunContext, Any]) -> Iterator[None]:
    """Inside the block, the node's Prefect task runs under the run's flow run and finds the run."""
    from prefect.context import FlowRunContext

    run, flow_run_context = opened
    with running(run), prefect_context(FlowRunContext, flow_run_context):
        yield


def _accepts(retry_on: Any, error: BaseException) -> bool:
    if isinstance(retry_on, type):
        return isinstance(error, retry_on)
    if isinstance(retry_on, (list, tuple)):
        return isinstance(error, tuple(retry_on))
    return bool(retry_on(error)) if callable(retry_on) else True


def _backoff(policy: RetryPolicy, failures: int) -> float:
    """LangGraph's wait after the ``failures``-th failed try: the policy's backoff, capped, plus its jitter."""
    interval = min(policy.max_interval, policy.initial_interval * policy.backoff_factor ** (failures - 1))
    return interval + random.uniform(0, 1) if policy.jitter else interval


def _unwrap(result: Any) -> Any:
    if isinstance(result, _Bubble):
        raise result.error
    return result


@dataclasses.dataclass
class _Handed:
    """The node's config, handed to its Prefect task in a box emptied when the task returns."""

    config: Any


@contextlib.contextmanager
def _handed(config: Any) -> Iterator[_Handed]:
    """The task run's parameters (in Prefect's task run context) can outlive the run, in the context Prefect's
    services copy when the run starts them (below); the config reaches the run's loop, and all it holds."""
    handed = _Handed(config)
    try:
        yield handed
    finally:
        handed.config = None


@contextlib.contextmanager
def _langgraph_config(config: Any) -> Iterator[None]:
    """LangGraph's config context variable (``get_config()``, ``interrupt()``) set to ``config`` in the block.

    The Prefect task is called with it cleared (``None``) and the node runs with it set again: Prefect starts
    process-wide services (events, API logs, concurrency leases) lazily, from inside the first task run that
    needs them, and they keep a copy of that caller's context variables for the life of the process — the
    config would keep the run's loop, and all it holds, alive after the run."""
    token = var_child_runnable_config.set(config)
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


@contextlib.contextmanager
def _step_scope(node: str, role: str | None, config: Any) -> Iterator[StepScope]:
    key = (config or {}).get("configurable", {}).get("checkpoint_ns") or node
    scope = StepScope(key=key, node=node, agent=role)
    run = active_run()
    with stepping(scope), observe.span(f"invoke_agent {role or node}", {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": role or node, "agentmesh.node": node,
        "agentmesh.step_key": key,
    }) as current:
        if run is None:
            yield scope
            return
        _record_step_start(run, scope, observe.trace_ids(current))
        try:
            yield scope
        except BaseException:
            _record_step_end(run, scope, "failed")
            raise
        _record_step_end(run, scope, "done")


def _record_step_start(run: RunContext, scope: StepScope, ids: tuple[str, str] | None) -> None:
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    task_run_id = str(ctx.task_run.id) if ctx else None
    with run.engine.begin() as conn:  # the step's row and its event: one commit
        # The worker is this process; a remote role's task worker writes itself there when it takes the step.
        start_step(conn, run_id=run.run_id, step_key=scope.key, node=scope.node, agent=scope.agent,
                   prefect_task_run_id=task_run_id, seq=run.next_step_seq(), span_id=ids[1] if ids else None,
                   worker=this_process(), if_owner=run.owner)
        run.emit({"type": "step_started", "node": scope.node, "agent": scope.agent}, conn)


def _record_step_end(run: RunContext, scope: StepScope, status: str) -> None:
    with run.engine.begin() as conn:
        end_step(conn, run_id=run.run_id, step_key=scope.key, status=status, if_owner=run.owner)
        run.emit({"type": "step_finished", "node": scope.node, "agent": scope.agent, "status": status}, conn)

