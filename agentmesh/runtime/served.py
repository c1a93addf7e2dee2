"""agentmesh graphs on LangGraph's own server — ``langgraph dev``, the Agent Server — and so through every
LangGraph client (``langgraph_sdk``, ``RemoteGraph``, Studio).

``served_graph(name)`` is a LangGraph graph factory for a registered graph: the server calls it for each run with
the run's config, and keeps what it returns open for the length of the run. A run on a thread is the agentmesh run
whose id is the thread id: when its first node runs with no agentmesh run active, the node establishes the run
(``agentmesh.runtime.compile.hosts``) — the run record (the goal from the graph's input, or from the record when the
thread's run is resumed), the run context with the same gateway, policy, audit and budgets as ``agentmesh run``,
and the goal's Prefect flow run (``agentmesh.runtime.goal.goal_flow``), under which every node runs as a task. When
the server's run ends, the flow run ends with it and the run is recorded as ``agentmesh run`` records it: done,
waiting for approval (the gateway's ``interrupt()`` surfaces as the server run's interrupt; a client resumes it with
``Command(resume={"approved": true})``), failed or over budget.

    # langgraph.json at the repository root
    {"dependencies": ["."], "graphs": {"mesh": "agentmesh.interfaces.langgraph_server:mesh"}}
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.constants import CONFIG_KEY_CHECKPOINTER
from langgraph.graph.state import CompiledStateGraph

from agentmesh.agents.context import RunContext
from agentmesh.core.exceptions import AgentmeshError, RunError, UserError
from agentmesh.core.settings import Settings, get_settings
from agentmesh.persistence.runs import find_run
from agentmesh.runtime.compile import durable_graph, hosts
from agentmesh.runtime.goal import LANGGRAPH_SERVER, GoalInvocation, goal_flow
from agentmesh.runtime.graphs import GraphSpec, get_graph
from agentmesh.runtime.prefect import shared_clients
from agentmesh.runtime.run import MAX_GOAL_CHARS, _approvals

__all__ = ["ServedRunError", "served_graph"]


def served_graph(name: str, settings: Settings | None = None) -> Callable[[RunnableConfig], Any]:
    """The LangGraph graph factory of the registered graph ``name`` (its nodes Prefect tasks, as under
    ``agentmesh run``); runs it starts are agentmesh runs."""

    @contextlib.asynccontextmanager
    async def graph(config: RunnableConfig) -> AsyncIterator[CompiledStateGraph]:
        try:
            async with _serving(name, settings, config) as compiled:
                yield compiled
        except AgentmeshError as exc:
            raise ServedRunError(f"{type(exc).__name__}: {exc}") from exc

    graph.__name__ = graph.__qualname__ = name
    return graph


@contextlib.asynccontextmanager
async def _serving(name: str, settings: Settings | None, config: RunnableConfig) -> AsyncIterator[CompiledStateGraph]:
    """The durable graph; for a run, the agentmesh run its nodes establish, recorded when the server's run ends."""
    if os.environ.get("LANGGRAPH_ALLOW_BLOCKING") == "false":
        # `langgraph dev` fails every blocking call on its event loop; agentmesh records each step, tool call and
        # verdict in its database before going on (synchronously, by design).
        raise UserError("agentmesh graphs record every step in their database as they go: start the dev server with "
                        "`langgraph dev --allow-blocking`")
    # In a thread: the first call imports the graph and may start the local Prefect server, and the server's event
    # loop answers its health checks meanwhile.
    spec, effective, compiled = await asyncio.to_thread(_load, name, settings)
    configurable = config.get("configurable") or {}
    thread = configurable.get("thread_id")
    if not configurable.get("__is_for_execution__") or thread is None:
        yield compiled  # the server reads the graph (its schema, its drawing, a thread's state)
        return
    host = _Host(spec, effective, str(thread), compiled.copy({"checkpointer": configurable.get(CONFIG_KEY_CHECKPOINTER)}),
                 started_by=str(configurable.get("langgraph_auth_user_id") or "langgraph server"))
    if hosts.setdefault(host.run_id, host) is not host:
        raise UserError(f"thread {host.run_id} already has a run in progress")
    try:
        yield compiled
    except BaseException as exc:
        await host.close(exc)
        raise
    else:
        await host.close(None)
    finally:
        hosts.pop(host.run_id, None)


class ServedRunError(RuntimeError):
    """An agentmesh run on LangGraph's server ended with one of agentmesh's errors (bad input, a budget, a refusal
    that ends the run). The server shows clients the message of Python's own errors only, so the run's error reaches
    them as this one, with the original's name and message."""


def _load(name: str, settings: Settings | None) -> tuple[GraphSpec, Settings, CompiledStateGraph]:
    effective = settings or get_settings()
    spec = get_graph(name, effective.graphs_paths)
    return spec, effective, durable_graph(spec.builder, effective)


class _Host:
    """One server run of a thread's graph: the agentmesh run it establishes (``agentmesh.runtime.compile.Host``)."""

    def __init__(self, spec: GraphSpec, settings: Settings, run_id: str, compiled: CompiledStateGraph, *,
                 started_by: str) -> None:
        self.spec, self.settings, self.run_id, self.compiled, self.started_by = spec, settings, run_id, compiled, started_by
        self.loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self._flow: asyncio.Task[Any] | None = None
        self._ready: asyncio.Future[tuple[RunContext, Any]] = self.loop.create_future()
        self._ended: asyncio.Future[None] = self.loop.create_future()

    async def open(self, state: Any) -> tuple[RunContext, Any]:
        """The run and its flow run's context; the first node of the server run starts them."""
        async with self._lock:
            if self._flow is None:
                self._start(state)
        return await asyncio.shield(self._ready)

    def _start(self, state: Any) -> None:
        from agentmesh.runtime.components import components

        record = find_run(components(self.settings).engine, self.run_id)
        goal = record["goal"] if record else _goal_of(state)
        inv = GoalInvocation(goal=goal, spec=self.spec, settings=self.settings,
                             approvals=_approvals(None, self.settings), run_id=self.run_id,
                             started_by=self.started_by, deployment=LANGGRAPH_SERVER, hosted=self._hosted)
        flow = goal_flow.with_options(flow_run_name=f"resume-{self.run_id[:8]}") if record else goal_flow
        self._flow = self.loop.create_task(self._run_flow(flow, inv))

    async def _run_flow(self, flow: Any, inv: GoalInvocation) -> None:
        try:
            async with shared_clients():
                await flow(goal=inv.goal, graph=inv.spec.name, run_id=inv.run_id, invocation=inv.as_parameter(),
                           return_state=True)
        finally:
            if not self._ready.done():  # the flow ended before the run could start: the first node says why
                self._ready.set_exception(RunError(inv.error or f"agentmesh run {self.run_id} did not start"))

    async def _hosted(self, run: RunContext, values: dict[str, Any]) -> bool:
        """The goal flow's body: the run is established; the server runs the graph; this returns when it ends."""
        from prefect.context import FlowRunContext

        self._ready.set_result((run, FlowRunContext.get()))
        try:
            await self._ended
        finally:
            with contextlib.suppress(Exception):  # partial results too, as under `agentmesh run`
                values.update((await self.compiled.aget_state(_config(self.run_id))).values)
        if self.compiled.checkpointer is None:
            return False  # a stateless run (no thread state kept): it cannot pause
        snapshot = await self.compiled.aget_state(_config(self.run_id))
        return bool(snapshot.interrupts)

    async def close(self, error: BaseException | None) -> None:
        """The server's run ended (``error``: how it failed); the flow run records the run and ends."""
        if self._flow is None:
            return  # no node ran: there was no agentmesh run to establish
        if isinstance(error, asyncio.CancelledError):
            self._ended.cancel()
        elif error is not None:
            self._ended.set_exception(error)
        else:
            self._ended.set_result(None)
        with contextlib.suppress(BaseException):
            await asyncio.shield(self._flow)


def _config(thread: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread}}


def _goal_of(state: Any) -> str:
    goal = state.get("goal") if isinstance(state, dict) else getattr(state, "goal", None)
    if not isinstance(goal, str) or not goal.strip():
        raise UserError('an agentmesh graph starts from its goal: run it with the input {"goal": "..."}')
    if len(goal) > MAX_GOAL_CHARS:
        raise UserError(f"the goal is {len(goal)} characters; keep it under {MAX_GOAL_CHARS}")
    return goal.strip()
