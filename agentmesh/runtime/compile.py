"""``compile``: any LangGraph ``StateGraph`` made durable — every node a Prefect task named for the node and
tagged with its role.

    from agentmesh import compile
    graph = compile(builder, checkpointer=InMemorySaver())

Retries: one layer, the node's Prefect task. How many: ``retries=`` given to ``compile``, else the node's own
LangGraph ``RetryPolicy`` (``max_attempts - 1``, and only for what its ``retry_on`` accepts), else the running
goal's ``settings.node_retries``, else the settings ``compile`` was given — resolved when the node runs. Never
retried, whatever the count: the model transport giving up (its own retry layer already ran), a budget, a
policy refusal or bad input — retrying cannot help and would only multiply calls. An ``interrupt()`` inside a
node is a pause, not a failure: the task completes and the interrupt is re-raised outside it, so Prefect neither
retries it nor shows a crash.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import weakref
from collections.abc import Iterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphBubbleUp
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph

from agentmesh.agents.context import RunContext, StepScope, active_run, stepping
from agentmesh.core import observe
from agentmesh.core.exceptions import RunError, UserError
from agentmesh.core.settings import Settings, get_settings
from agentmesh.models import is_transport_failure
from agentmesh.persistence.runs import end_step, start_step
from agentmesh.runtime._upstream import RunnableCallable
from agentmesh.runtime.prefect import configure_prefect

__all__ = ["compile", "durable_builder", "durable_graph"]


@dataclasses.dataclass
class _Bubble:
    """A LangGraph control-flow signal (interrupt, parent command) carried out of a Prefect task."""

    error: GraphBubbleUp


def compile(graph: StateGraph, *, checkpointer: BaseCheckpointSaver | None = None, retries: int | None = None,
            settings: Settings | None = None, **compile_kwargs: Any) -> CompiledStateGraph:
    """Compile a StateGraph with every node run as a Prefect task named for the node, tagged with its role.

    The role comes from the node's metadata (``add_node(..., metadata={"agent": "analyst"})``). Works on any
    StateGraph; the original builder is left untouched. ``settings`` name the Prefect server (and the node
    retries outside a goal); by default, the environment's.
    """
    return durable_builder(graph, retries=retries, settings=settings).compile(checkpointer=checkpointer,
                                                                            **compile_kwargs)


def durable_builder(graph: StateGraph, *, retries: int | None = None, settings: Settings | None = None) -> StateGraph:
    """A copy of the builder whose nodes run as Prefect tasks (compile it with the checkpointer you need)."""
    settings = settings or get_settings()
    configure_prefect(settings)
    builder = copy.copy(graph)
    builder.nodes = {name: _durable_node(name, spec, retries, settings) for name, spec in graph.nodes.items()}
    return builder


_durable_graphs: weakref.WeakKeyDictionary[StateGraph, CompiledStateGraph] = weakref.WeakKeyDictionary()


def durable_graph(graph: StateGraph, settings: Settings) -> CompiledStateGraph:
    """The graph compiled durably once per builder and process; a goal attaches its checkpointer with
    ``copy()`` (wrapping every node in tasks and compiling cost ~30 ms a goal). Retries are the goal's."""
    found = _durable_graphs.get(graph)
    if found is None:
        found = _durable_graphs[graph] = compile(graph, settings=settings)
    return found


def _durable_node(name: str, spec: Any, retries: int | None, settings: Settings) -> Any:
    from prefect import task
    from prefect.cache_policies import NONE
    from prefect.utilities.annotations import quote

    original = spec.runnable
    role = (spec.metadata or {}).get("agent")
    policy = spec.retry_policy[0] if isinstance(spec.retry_policy, (list, tuple)) else spec.retry_policy

    def count() -> int:
        if retries is not None:
            return retries
        if policy is not None:
            return max(0, policy.max_attempts - 1)
        run = active_run()
        return (run.settings if run is not None else settings).node_retries

    def should_retry(task: Any, task_run: Any, state: Any) -> bool:
        # The task engine wraps the exception as the Failed state's data (reading `state.result()` here would
        # return a coroutine in an async task).
        error = state.data if isinstance(state.data, BaseException) else None
        if error is None:
            return True
        if isinstance(error, (UserError, RunError)) or is_transport_failure(error):
            return False
        return policy is None or _accepts(policy.retry_on, error)

    options = dict(
        name=name,
        tags=["agentmesh", role or "router"],
        retry_delay_seconds=_delays(policy),
        retry_condition_fn=should_retry,
        cache_policy=NONE,
        persist_result=False,
    )

    async def run_async(state: Any, config: Any) -> Any:
        with _step_scope(name, role, config):
            try:
                return await original.ainvoke(state, config)
            except GraphBubbleUp as signal:
                return _Bubble(signal)

    def run_sync(state: Any, config: Any) -> Any:
        with _step_scope(name, role, config):
            try:
                return original.invoke(state, config)
            except GraphBubbleUp as signal:
                return _Bubble(signal)

    base_async, base_sync = task(run_async, **options), task(run_sync, **options)  # type: ignore[call-overload]
    by_retries: dict[int, tuple[Any, Any]] = {}

    def tasks() -> tuple[Any, Any]:
        n = count()
        if n not in by_retries:
            by_retries[n] = (base_async.with_options(retries=n), base_sync.with_options(retries=n))
        return by_retries[n]

    async def afunc(state: Any, config: RunnableConfig) -> Any:
        # quote(): Prefect must not walk the state and config looking for futures (the config holds the
        # checkpointer and callbacks); the task gets them as they are.
        return _unwrap(await tasks()[0](quote(state), quote(config)))

    def func(state: Any, config: RunnableConfig) -> Any:
        from prefect.context import SyncClientContext

        with SyncClientContext.get_or_create():  # ~4 ms a task instead of ~26 ms (a new client per task)
            return _unwrap(tasks()[1](quote(state), quote(config)))

    return dataclasses.replace(spec, runnable=RunnableCallable(func, afunc, name=name, trace=False), retry_policy=None)


def _accepts(retry_on: Any, error: BaseException) -> bool:
    if isinstance(retry_on, type):
        return isinstance(error, retry_on)
    if isinstance(retry_on, (list, tuple)):
        return isinstance(error, tuple(retry_on))
    return bool(retry_on(error)) if callable(retry_on) else True


def _delays(policy: Any) -> Any:
    """The wait before each retry: the RetryPolicy's backoff (without jitter), else one second."""
    if policy is None:
        return 1
    return [min(policy.max_interval, policy.initial_interval * policy.backoff_factor ** i)
            for i in range(max(1, policy.max_attempts - 1))]


def _unwrap(result: Any) -> Any:
    if isinstance(result, _Bubble):
        raise result.error
    return result


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
        start_step(conn, run_id=run.run_id, step_key=scope.key, node=scope.node, agent=scope.agent,
                   prefect_task_run_id=task_run_id, seq=run.next_step_seq(), span_id=ids[1] if ids else None)
        run.emit({"type": "step_started", "node": scope.node, "agent": scope.agent}, conn)


def _record_step_end(run: RunContext, scope: StepScope, status: str) -> None:
    with run.engine.begin() as conn:
        end_step(conn, run_id=run.run_id, step_key=scope.key, status=status)
        run.emit({"type": "step_finished", "node": scope.node, "agent": scope.agent, "status": status}, conn)

