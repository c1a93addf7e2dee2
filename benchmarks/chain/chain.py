"""A line of N nodes, each one model call (no tools): the graph every framework layer is measured on.

The model is read from ``BENCH_OPENAI_BASE_URL`` (the benchmark's local OpenAI-protocol server).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

EXAMPLE_GOAL = "count to N"


class ChainState(TypedDict, total=False):
    goal: str
    count: int


@cache
def chat_model() -> Any:
    from langchain_openai import ChatOpenAI

    streaming = os.environ.get("BENCH_STREAM") == "1"
    return ChatOpenAI(
        model="bench",
        base_url=os.environ["BENCH_OPENAI_BASE_URL"],
        api_key="bench",
        max_retries=0,
        streaming=streaming,
        stream_usage=streaming,
    )


def _node(index: int) -> Any:
    async def node(state: ChainState) -> dict[str, Any]:
        await chat_model().ainvoke(f"{state.get('goal', '')}: step {index}")
        return {"count": state.get("count", 0) + 1}

    node.__name__ = f"n{index}"
    return node


def chain(length: int) -> StateGraph:
    graph = StateGraph(ChainState)
    previous = START
    for index in range(length):
        graph.add_node(f"n{index}", _node(index), metadata={"agent": "analyst"})
        graph.add_edge(previous, f"n{index}")
        previous = f"n{index}"
    graph.add_edge(previous, END)
    return graph


# Built once at import, as a graph module usually is (``langgraph.json`` names the objects): agentmesh wraps and
# compiles a module-level graph once per process. A factory function would be called, and compiled, per goal.
chain_2 = chain(2)
chain_12 = chain(12)
