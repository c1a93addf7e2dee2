"""pytest plugin: every ``StateGraph.compile(...)`` of the run goes through ``agentmesh.compile``.

Loaded by ``benchmarks/langgraph_suite/run.py`` with ``-p agentmesh_compile_plugin`` for the through-compile run
only; the plain run does not load it, so LangGraph's own ``compile`` runs untouched there.

``agentmesh.compile(builder, checkpointer=..., **kwargs)`` copies the builder, wraps each node in a Prefect task
and compiles the copy with ``StateGraph.compile`` itself: that inner call (same thread, while the patched call is
on the stack) goes to the original method, so nothing recurses. Everything that compiles a StateGraph —
a test's own graph, a subgraph compiled before it is added as a node, ``create_react_agent`` — goes through
agentmesh; graphs that are not StateGraphs (``@entrypoint``, a hand-built ``Pregel``) are left as they are.

With ``LGSUITE_WARMUP=1`` (run.py's rerun of the load-sensitive failures) a small graph, one sync and one async
node, runs through agentmesh when the session starts: the first Prefect task run of a process costs ~0.3–1 s
(client, events worker, imports) and would otherwise land on the first test's time budget. The main
through-compile run does not warm up: there a process's first run is measured as users get it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from typing import Any

import pytest
from langgraph.graph import START
from langgraph.graph.state import StateGraph
from typing_extensions import TypedDict

_original_compile = StateGraph.compile
_inside = threading.local()


@functools.wraps(_original_compile)
def _compile_through_agentmesh(self: StateGraph, checkpointer: Any = None, **kwargs: Any) -> Any:
    if getattr(_inside, "active", False):  # agentmesh.compile compiling its durable copy
        return _original_compile(self, checkpointer, **kwargs)
    import agentmesh

    _inside.active = True
    try:
        return agentmesh.compile(self, checkpointer=checkpointer, **kwargs)
    finally:
        _inside.active = False


def pytest_configure(config: pytest.Config) -> None:
    StateGraph.compile = _compile_through_agentmesh  # type: ignore[method-assign]


class _WarmUpState(TypedDict):
    n: int


def _warm_up() -> None:
    async def async_step(state: _WarmUpState) -> _WarmUpState:
        return {"n": state["n"] + 1}

    sync_builder = StateGraph(_WarmUpState)
    sync_builder.add_node("sync_step", lambda state: {"n": state["n"] + 1})
    sync_builder.add_edge(START, "sync_step")
    sync_builder.compile().invoke({"n": 0})  # through agentmesh (pytest_configure patched compile)
    async_builder = StateGraph(_WarmUpState)
    async_builder.add_node("async_step", async_step)
    async_builder.add_edge(START, "async_step")
    asyncio.run(async_builder.compile().ainvoke({"n": 0}))


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("LGSUITE_WARMUP") == "1":
        _warm_up()


def pytest_unconfigure(config: pytest.Config) -> None:
    StateGraph.compile = _original_compile  # type: ignore[method-assign]


def pytest_report_header(config: pytest.Config) -> str:
    return "agentmesh: every StateGraph.compile(...) goes through agentmesh.compile"
