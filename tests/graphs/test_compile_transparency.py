"""``agentmesh.compile`` keeps what LangGraph promises about a graph: each scenario runs on the same StateGraph
compiled plainly and through agentmesh, and the two must agree — while, through agentmesh, every node really
runs as a Prefect task (checked inside the node)."""

from __future__ import annotations

import asyncio
import gc
import operator
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import NodeTimeoutError
from langgraph.graph import END, START, StateGraph
from langgraph.pregel._loop import AsyncPregelLoop, SyncPregelLoop
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy, TimeoutPolicy, interrupt
from prefect.context import TaskRunContext

import agentmesh
from agentmesh.core.exceptions import UserError


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _in_task(name: str) -> bool:
    """True when the caller runs inside a Prefect task run named for the node ``name``."""
    ctx = TaskRunContext.get()
    return ctx is not None and ctx.task.name == name


def _child() -> StateGraph:
    def inner(state: State) -> State:
        return {"log": [f"inner:{_in_task('inner')}"]}

    def ask(state: State) -> State:
        return {"log": [f"answer:{interrupt('which?')}"]}

    child = StateGraph(State)
    child.add_node("inner", inner)
    child.add_node("ask", ask)
    child.add_edge(START, "inner")
    child.add_edge("inner", "ask")
    child.add_edge("ask", END)
    return child


def _parent(compile_: Any) -> Any:
    """A parent graph with a compiled subgraph as its node ``child``, compiled (both) with ``compile_``."""
    subgraph = compile_(_child())

    def first(state: State) -> State:
        return {"log": [f"first:{_in_task('first')}"]}

    parent = StateGraph(State)
    parent.add_node("first", first)
    parent.add_node("child", subgraph)
    parent.add_edge(START, "first")
    parent.add_edge("first", "child")
    parent.add_edge("child", END)
    return compile_(parent, checkpointer=InMemorySaver()), subgraph


def _plain(builder: StateGraph, **kwargs: Any) -> Any:
    return builder.compile(**kwargs)


def test_subgraphs_are_discovered_and_drawn_as_plainly(home: Path) -> None:
    plain, _ = _parent(_plain)
    durable, subgraph = _parent(agentmesh.compile)

    assert list(durable.get_subgraphs()) == [("child", subgraph)]
    assert [ns for ns, _ in durable.get_subgraphs(recurse=True)] == [ns for ns, _ in plain.get_subgraphs(recurse=True)]
    assert durable.nodes["child"].subgraphs == [subgraph]
    xray = durable.get_graph(xray=True)
    assert {"child:inner", "child:ask"} <= set(xray.nodes)
    assert xray.draw_mermaid() == plain.get_graph(xray=True).draw_mermaid()
    # Node data and ids: the node's own runnable (the compiled subgraph, the function), not agentmesh's wrapper.
    assert durable.get_graph().to_json() == plain.get_graph().to_json()
    ids = {n["id"]: n["data"]["id"] for n in durable.get_graph().to_json()["nodes"] if n.get("type") == "runnable"}
    assert ids["child"][-1] == "CompiledStateGraph"


def _snapshot_scenario(compile_: Any) -> dict[str, Any]:
    graph, _ = _parent(compile_)
    config = {"configurable": {"thread_id": "t1"}}
    graph.invoke({"log": []}, config)
    snapshot = graph.get_state(config, subgraphs=True)
    (task,) = snapshot.tasks
    child_state = task.state
    assert child_state is not None, "the subgraph's state is part of the parent's snapshot"
    # update_state into the subgraph, through the subgraph task's own config, then resume it
    graph.update_state(child_state.config, {"log": ["edited"]})
    edited = graph.get_state(config, subgraphs=True).tasks[0].state
    history = list(graph.get_state_history(child_state.config))
    result = graph.invoke(Command(resume="blue"), config)
    return {"next": snapshot.next, "task": task.name, "child_values": child_state.values,
            "child_next": child_state.next, "child_ns": child_state.config["configurable"]["checkpoint_ns"].split(":")[0],
            "edited": edited.values if edited else None, "history": len(history), "result": result}


def test_state_snapshots_update_state_and_history_reach_into_subgraphs(home: Path) -> None:
    plain = _snapshot_scenario(_plain)
    durable = _snapshot_scenario(agentmesh.compile)

    assert durable["child_values"] == {"log": ["first:True", "inner:True"]}  # ran as Prefect tasks
    assert durable["child_next"] == ("ask",) and durable["child_ns"] == "child"
    assert durable["edited"] == {"log": ["first:True", "inner:True", "edited"]}
    assert durable["result"]["log"][-1] == "answer:blue"
    # the same as plain LangGraph, but for where the nodes ran
    assert {k: str(v).replace("True", "False") for k, v in durable.items()} == {k: str(v) for k, v in plain.items()}


def _flaky(failures: int, error: type[Exception], attempts: list[int]) -> Any:
    def node(state: State, runtime: Runtime) -> State:
        assert runtime.execution_info is not None
        attempts.append(runtime.execution_info.node_attempt)
        if len(attempts) <= failures:
            raise error("not yet")
        return {"log": [f"ok:{_in_task('flaky')}"]}

    return node


def _run_flaky(compile_: Any, failures: int, error: type[Exception], retry_policy: Any) -> tuple[list[int], Any]:
    attempts: list[int] = []
    builder = StateGraph(State)
    builder.add_node("flaky", _flaky(failures, error, attempts), retry_policy=retry_policy)
    builder.add_edge(START, "flaky")
    graph = compile_(builder)
    try:
        return attempts, graph.invoke({"log": []})
    except Exception as failed:  # noqa: BLE001 - the outcome is compared
        return attempts, type(failed).__name__


_FAST = dict(initial_interval=0.01, jitter=False)


@pytest.mark.parametrize(("failures", "error", "policy", "expected_attempts", "succeeds"), [
    # a single RetryPolicy (a NamedTuple: a tuple of its fields) retries up to max_attempts tries
    (2, ValueError, RetryPolicy(max_attempts=3, retry_on=ValueError, **_FAST), [1, 2, 3], True),
    (5, ValueError, RetryPolicy(max_attempts=3, retry_on=ValueError, **_FAST), [1, 2, 3], False),
    # several: the first whose retry_on accepts the error decides
    (1, KeyError, [RetryPolicy(retry_on=ValueError, **_FAST), RetryPolicy(retry_on=KeyError, **_FAST)], [1, 2], True),
    (1, KeyError, [RetryPolicy(retry_on=ValueError, **_FAST)], [1], False),
    # no policy: run once, as LangGraph does (no retries outside a goal)
    (1, ValueError, None, [1], False),
    # what retrying cannot help is never retried, whatever the policy
    (1, UserError, RetryPolicy(retry_on=Exception, **_FAST), [1], False),
])
def test_retry_policies_are_followed_as_langgraph_follows_them(
        home: Path, failures: int, error: type[Exception], policy: Any, expected_attempts: list[int],
        succeeds: bool) -> None:
    attempts, outcome = _run_flaky(agentmesh.compile, failures, error, policy)

    assert attempts == expected_attempts
    if succeeds:
        assert outcome == {"log": ["ok:True"]}
    else:
        assert outcome == error.__name__
    if error is not UserError:
        assert _run_flaky(_plain, failures, error, policy) == (attempts, {"log": ["ok:False"]} if succeeds else outcome)


def test_node_defaults_retry_policy_is_followed(home: Path) -> None:
    attempts: list[int] = []
    builder = StateGraph(State)
    builder.set_node_defaults(retry_policy=RetryPolicy(max_attempts=2, retry_on=ValueError, **_FAST))
    builder.add_node("flaky", _flaky(1, ValueError, attempts))
    builder.add_edge(START, "flaky")
    assert agentmesh.compile(builder).invoke({"log": []}) == {"log": ["ok:True"]}
    assert attempts == [1, 2]


def test_a_timeout_on_a_sync_node_is_rejected_at_compile_time(home: Path) -> None:
    def sync_node(state: State) -> State:
        return {"log": ["sync"]}

    async def async_node(state: State) -> State:
        await asyncio.sleep(0)
        return {"log": [f"async:{_in_task('async_node')}"]}

    rejected = StateGraph(State)
    rejected.add_node("sync_node", sync_node, timeout=5)
    rejected.add_edge(START, "sync_node")
    with pytest.raises(ValueError, match="only supported for async nodes"):
        agentmesh.compile(rejected)

    accepted = StateGraph(State)
    accepted.add_node("async_node", async_node, timeout=5)
    accepted.add_edge(START, "async_node")
    assert asyncio.run(agentmesh.compile(accepted).ainvoke({"log": []})) == {"log": ["async:True"]}


def test_nothing_of_a_finished_run_is_kept_alive(home: Path) -> None:
    """As LangGraph checks (test_pregel_loop_refcount): with the garbage collector off, no loop of a finished
    run is left. A role never seen before makes Prefect start services (a concurrency-lease worker for the
    task's tags) from inside the node's task run, whose context they keep."""
    def step(state: State) -> State:
        return {"log": [f"step:{_in_task('step')}"]}

    async def astep(state: State) -> State:
        return {"log": [f"astep:{_in_task('astep')}"]}

    def loops() -> set[int]:  # those of this test: earlier tests' (held by their tracebacks, say) are not counted
        return {id(o) for o in gc.get_objects() if isinstance(o, (SyncPregelLoop, AsyncPregelLoop))} - earlier

    sync_builder = StateGraph(State)
    sync_builder.add_node("step", step, metadata={"agent": f"role-{uuid.uuid4().hex[:8]}"})
    sync_builder.add_edge(START, "step")
    async_builder = StateGraph(State)
    async_builder.add_node("astep", astep, metadata={"agent": f"role-{uuid.uuid4().hex[:8]}"})
    async_builder.add_edge(START, "astep")
    sync_graph, async_graph = agentmesh.compile(sync_builder), agentmesh.compile(async_builder)
    earlier: set[int] = set()
    gc.collect()
    earlier = loops()
    gc.disable()
    try:
        for _ in range(2):
            assert sync_graph.invoke({"log": []}) == {"log": ["step:True"]}
            assert loops() == set()
            assert asyncio.run(async_graph.ainvoke({"log": []})) == {"log": ["astep:True"]}
            assert loops() == set()
    finally:
        gc.enable()


def _run_timing_out(compile_: Any, retry_policy: Any) -> tuple[list[tuple[int, int]], Any]:
    """A node whose first attempt never finishes (it waits on an event nobody sets) under a 0.3 s idle timeout;
    its later attempts return at once. Returns (node_attempt, Prefect run_count) per attempt, and the outcome."""
    attempts: list[tuple[int, int]] = []

    async def slow_once(state: State, runtime: Runtime) -> State:
        assert runtime.execution_info is not None
        ctx = TaskRunContext.get()
        attempts.append((runtime.execution_info.node_attempt, ctx.task_run.run_count if ctx else 0))
        if len(attempts) == 1:
            await asyncio.Event().wait()
        return {"log": [f"done:{_in_task('slow_once')}"]}

    builder = StateGraph(State)
    builder.add_node("slow_once", slow_once, timeout=TimeoutPolicy(idle_timeout=0.3), retry_policy=retry_policy)
    builder.add_edge(START, "slow_once")
    graph = compile_(builder)
    try:
        return attempts, asyncio.run(graph.ainvoke({"log": []}))
    except NodeTimeoutError as failed:
        return attempts, (type(failed).__name__, failed.node, failed.kind)


def test_a_timeout_is_per_attempt_and_retried_as_the_policy_says(home: Path) -> None:
    retry_timeouts = RetryPolicy(max_attempts=3, retry_on=NodeTimeoutError, **_FAST)
    attempts, outcome = _run_timing_out(agentmesh.compile, retry_timeouts)
    # the timed-out attempt is retried by the node's Prefect task run: one task run, its second try
    assert attempts == [(1, 1), (2, 2)]
    assert outcome == {"log": ["done:True"]}
    plain_attempts, plain_outcome = _run_timing_out(_plain, retry_timeouts)
    assert ([a for a, _ in plain_attempts], plain_outcome) == ([1, 2], {"log": ["done:False"]})

    # a policy that does not accept the timeout: one attempt, LangGraph's NodeTimeoutError, as plainly
    other_errors = RetryPolicy(max_attempts=3, retry_on=ValueError, **_FAST)
    attempts, outcome = _run_timing_out(agentmesh.compile, other_errors)
    assert attempts == [(1, 1)]
    assert outcome == ("NodeTimeoutError", "slow_once", "idle") == _run_timing_out(_plain, other_errors)[1]
