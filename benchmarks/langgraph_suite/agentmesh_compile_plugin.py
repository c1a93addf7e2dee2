"""pytest plugin: every ``StateGraph.compile(...)`` of the run goes through ``agentmesh.compile``.

Loaded by ``benchmarks/langgraph_suite/run.py`` with ``-p agentmesh_compile_plugin`` for the through-compile run
only; the plain run does not load it, so LangGraph's own ``compile`` runs untouched there.

``agentmesh.compile(builder, checkpointer=..., **kwargs)`` copies the builder, wraps each node in a Prefect task
and compiles the copy with ``StateGraph.compile`` itself: that inner call (same thread, while the patched call is
on the stack) goes to the original method, so nothing recurses. Everything that compiles a StateGraph —
a test's own graph, a subgraph compiled before it is added as a node, ``create_react_agent`` — goes through
agentmesh; graphs that are not StateGraphs (``@entrypoint``, a hand-built ``Pregel``) are left as they are.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import pytest
from langgraph.graph.state import StateGraph

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


def pytest_unconfigure(config: pytest.Config) -> None:
    StateGraph.compile = _original_compile  # type: ignore[method-assign]


def pytest_report_header(config: pytest.Config) -> str:
    return "agentmesh: every StateGraph.compile(...) goes through agentmesh.compile"
