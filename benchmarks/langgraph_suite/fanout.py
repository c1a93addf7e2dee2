"""A wide fan-out (100 ``Send``s to an async node sleeping 50 ms), plainly and through ``agentmesh.compile``: how
far apart the node bodies start and how many run at once (LangGraph's ``test_max_concurrency`` needs all 100).

    AGENTMESH_HOME=... .cache/langgraph-suite/venv/bin/python benchmarks/langgraph_suite/fanout.py
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import Callable
from typing import Annotated, Any

from langgraph.graph import START, StateGraph
from langgraph.types import Send

import agentmesh


def build() -> tuple[StateGraph, list[float], list[float]]:
    entries: list[float] = []
    exits: list[float] = []

    async def two(state: Any) -> list[Any]:
        entries.append(time.monotonic())
        await asyncio.sleep(0.05)
        exits.append(time.monotonic())
        return [state]

    async def fan(state: Any) -> list[Send]:
        return [Send("2", i) for i in range(100)]

    builder = StateGraph(Annotated[list, operator.add])
    builder.add_node("1", lambda state: ["1"])
    builder.add_node("2", two)
    builder.add_edge(START, "1")
    builder.add_conditional_edges("1", fan)
    return builder, entries, exits


def main() -> None:
    compilers: dict[str, Callable[[StateGraph], Any]] = {"plain": lambda b: b.compile(), "agentmesh": agentmesh.compile}
    for name, compile_ in compilers.items():
        for run in range(2):
            builder, entries, exits = build()
            graph = compile_(builder)
            started = time.monotonic()
            asyncio.run(graph.ainvoke(["0"]))
            wall = time.monotonic() - started
            overlap = max(sum(e <= t for e in entries) - sum(x <= t for x in exits) for t in entries)
            print(f"{name} run {run}: wall {wall:.2f} s, first to last node start "
                  f"{(max(entries) - min(entries)) * 1000:.0f} ms, at most {overlap} of 100 at once")


if __name__ == "__main__":
    main()
