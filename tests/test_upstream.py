"""The LangGraph and Prefect internals agentmesh relies on (``agentmesh.runtime._upstream``) still behave as it
expects: each test fails when an upgrade changes one of them."""

from __future__ import annotations

import inspect
from contextvars import ContextVar
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from prefect.context import AsyncClientContext, SyncClientContext, TaskRunContext

from agentmesh.runtime._upstream import RunnableCallable, prefect_context, retry_config, routed_node


class _State(TypedDict, total=False):
    seen: str


def test_runnable_callable_takes_sync_and_async_functions_a_name_and_no_tracing() -> None:
    parameters = inspect.signature(RunnableCallable).parameters
    assert {"func", "afunc", "name", "trace"} <= set(parameters)


async def test_a_node_wrapped_in_runnable_callable_gets_langgraph_s_config_and_stays_out_of_events() -> None:
    def func(state: _State, config: RunnableConfig) -> _State:
        return {"seen": config["configurable"]["thread_id"]}

    async def afunc(state: _State, config: RunnableConfig) -> _State:
        return func(state, config)

    builder = StateGraph(_State)
    builder.add_node("node", RunnableCallable(func, afunc, name="node", trace=False))
    builder.add_edge(START, "node")
    builder.add_edge("node", END)
    graph = builder.compile()
    config: RunnableConfig = {"configurable": {"thread_id": "t-1"}}
    assert graph.invoke({}, config) == {"seen": "t-1"}
    assert await graph.ainvoke({}, config) == {"seen": "t-1"}
    names = {e["name"] for e in [event async for event in graph.astream_events({}, config, version="v2")]}
    assert names == {"LangGraph", "node"}  # no run of the wrapper's own


def test_prefect_context_models_keep_their_variable_in_dunder_var() -> None:
    for model in (TaskRunContext, AsyncClientContext, SyncClientContext):
        assert isinstance(model.__var__, ContextVar)  # type: ignore[attr-defined]


def test_prefect_context_sets_and_restores_what_get_returns() -> None:
    marker = object()
    assert TaskRunContext.get() is None
    with prefect_context(TaskRunContext, marker):
        assert TaskRunContext.get() is marker
        with prefect_context(TaskRunContext, None):
            assert TaskRunContext.get() is None
        assert TaskRunContext.get() is marker
    assert TaskRunContext.get() is None


def test_a_routed_node_executes_through_its_runner_and_is_read_as_its_own_runnable() -> None:
    """LangGraph executes ``PregelNode.node`` and reads ``bound`` for subgraphs and drawings."""
    child = StateGraph(_State)
    child.add_node("inner", lambda state: {"seen": "inner"})
    child.add_edge(START, "inner")
    subgraph = child.compile()

    def node(state: _State, runtime: Runtime) -> _State:
        assert runtime.execution_info is not None
        return {"seen": f"attempt {runtime.execution_info.node_attempt}"}

    builder = StateGraph(_State)
    builder.add_node("child", subgraph)
    builder.add_node("node", node)
    builder.add_edge(START, "child")
    builder.add_edge("child", "node")
    graph = builder.compile()
    plain_json = graph.get_graph(xray=True).to_json()
    ran: list[str] = []

    def through(name: str, bound: object) -> RunnableCallable:
        def func(state: _State, config: RunnableConfig) -> object:
            ran.append(name)
            return bound.invoke(state, retry_config(config, 2))  # type: ignore[attr-defined]

        return RunnableCallable(func, name=name, trace=False)

    for name in ("child", "node"):
        graph.nodes[name] = routed_node(graph.nodes[name], through(name, graph.nodes[name].bound),
                                        retry_policy=None)
    assert graph.invoke({}) == {"seen": "attempt 2"}
    assert ran == ["child", "node"]
    assert list(graph.get_subgraphs()) == [("child", subgraph)]
    assert graph.get_graph(xray=True).to_json() == plain_json
    assert graph.nodes["child"].copy({}).node is not None and isinstance(graph.nodes["child"].copy({}), type(graph.nodes["child"]))


async def test_a_timed_attempt_is_timed_as_langgraph_times_one_and_its_writes_are_dropped() -> None:
    """An async node routed through ``timed_attempt``: LangGraph's watchdog raises its NodeTimeoutError, the write
    the attempt made before it is dropped from the task's writes; a retried attempt starts with none."""
    import asyncio

    import pytest
    from langgraph._internal._constants import CONF, CONFIG_KEY_RUNTIME, CONFIG_KEY_SEND
    from langgraph.errors import NodeTimeoutError
    from langgraph.types import TimeoutPolicy

    from agentmesh.runtime._upstream import timed_attempt

    async def node(state: _State, config: RunnableConfig) -> _State:
        if config[CONF][CONFIG_KEY_RUNTIME].execution_info.node_attempt == 1:
            config[CONF][CONFIG_KEY_SEND]([("seen", "early")])
            await asyncio.Event().wait()
        return {"seen": "late"}

    proc = RunnableCallable(None, node, name="slow", trace=False)
    timeout = TimeoutPolicy(idle_timeout=0.05)
    writes: list[int] = []

    async def through(state: _State, config: RunnableConfig) -> object:
        task_writes = config[CONF][CONFIG_KEY_SEND].__self__  # LangGraph hands a node its task's writes.extend
        with pytest.raises(NodeTimeoutError) as failed:
            await timed_attempt("slow", proc, state, config, timeout)
        assert (failed.value.node, failed.value.kind) == ("slow", "idle")
        writes.append(len(task_writes))  # the timed-out attempt's write was dropped
        task_writes.append(("seen", "from a failed attempt"))
        retried = retry_config(config, 2)
        writes.append(len(task_writes))  # a retried attempt starts with none
        return await timed_attempt("slow", proc, state, retried, timeout)

    builder = StateGraph(_State)
    builder.add_node("slow", RunnableCallable(None, through, name="slow", trace=False))
    builder.add_edge(START, "slow")
    assert await builder.compile().ainvoke({}) == {"seen": "late"}
    assert writes == [0, 0]


def test_a_task_run_uses_the_prefect_services_started_for_its_tags_and_starts_none(home: object) -> None:
    """``start_prefect_services`` starts what the task engine will look up, under the same keys: a failing task
    run with those tags (events, an API log, a concurrency lease) starts no service from inside itself."""
    import uuid

    import pytest
    from prefect import tags as prefect_tags
    from prefect import task
    from prefect._internal.concurrency.threads import get_global_loop

    from agentmesh.core.settings import get_settings
    from agentmesh.runtime._upstream import start_prefect_services
    from agentmesh.runtime.prefect import configure_prefect

    configure_prefect(get_settings())
    task_tags = ["agentmesh", f"role-{uuid.uuid4().hex[:8]}"]  # a set of tags no service has been started for

    @task(tags=task_tags, persist_result=False)
    def fails() -> None:
        raise ValueError("no")

    with prefect_tags(f"context-{uuid.uuid4().hex[:8]}"):  # the caller's tags count too, as the engine's
        start_prefect_services(task_tags)
        started = list(get_global_loop()._on_shutdown)  # a service started registers its drain() there
        with pytest.raises(ValueError):
            fails()
    assert get_global_loop()._on_shutdown == started
