"""The workload as a LangGraph ReAct graph: an ``agent`` node (one model request) and a ``tools`` node (the
requested tool calls), looping until the model answers. 4 model requests and 3 tool calls make 7 node runs.

One builder for every LangGraph variant, so they differ only in what runs the nodes and the tools:
``call_tool`` executes a tool call (a plain function call, or agentmesh's gateway), ``wrap`` turns a node
function into what the graph runs (itself, or a Prefect task). The model is read from
``BENCH_OPENAI_BASE_URL`` (the benchmark's local OpenAI-protocol server).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from workload import FUNCTIONS  # type: ignore[import-not-found]  (benchmarks/peers is on sys.path)


class ReactState(TypedDict, total=False):
    goal: str
    messages: Annotated[list[AnyMessage], add_messages]
    decision: dict[str, Any]


@cache
def chat_model() -> Any:
    """The model with the workload's tools bound; built once per process, as a graph module's model is."""
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="bench", base_url=os.environ["BENCH_OPENAI_BASE_URL"], api_key="bench", max_retries=0)
    return model.bind_tools(list(FUNCTIONS.values()))


def decision(answer: str) -> dict[str, Any]:
    return {"summary": answer, "rationale": "From the three tool results.", "confidence": 0.9, "open_risks": [],
            "outcome": "achieved"}


ToolCaller = Callable[[str, dict[str, Any]], Awaitable[Any]]


async def call_directly(name: str, args: dict[str, Any]) -> Any:
    return FUNCTIONS[name](**args)


def build(call_tool: ToolCaller = call_directly,
          wrap: Callable[[str, Callable[..., Any]], Callable[..., Any]] = lambda name, fn: fn) -> StateGraph:
    async def agent(state: ReactState) -> dict[str, Any]:
        history = state.get("messages") or []
        new: list[AnyMessage] = [] if history else [HumanMessage(state["goal"])]
        reply: AIMessage = await chat_model().ainvoke([*history, *new])
        update: dict[str, Any] = {"messages": [*new, reply]}
        if not reply.tool_calls:
            update["decision"] = decision(str(reply.content))
        return update

    async def tools(state: ReactState) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        results = []
        for call in last.tool_calls:
            result = await call_tool(call["name"], call["args"])
            results.append(ToolMessage(json.dumps(result), tool_call_id=call["id"], name=call["name"]))
        return {"messages": results}

    def route(state: ReactState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    graph = StateGraph(ReactState)
    graph.add_node("agent", wrap("agent", agent), metadata={"agent": "analyst"})
    graph.add_node("tools", wrap("tools", tools), metadata={"agent": "analyst"})
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph


def answer_of(values: dict[str, Any]) -> str:
    """The run's answer: the decision's summary, else the last message."""
    if values.get("decision"):
        return str(values["decision"]["summary"])
    messages = values.get("messages") or []
    return str(messages[-1].content) if messages else ""
