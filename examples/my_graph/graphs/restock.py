"""Restock: check every SKU, reorder what runs low, and let the strategist explain the decision."""

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from agentmesh import Agent, Decision, actions_taken, use_tool

EXAMPLE_GOAL = "Restock SKU-1, SKU-2 and SKU-3 up to 40 units each"
TARGET = 40


class RestockState(TypedDict, total=False):
    goal: str
    low: dict[str, int]
    decision: dict[str, Any]


async def check(state: RestockState) -> dict[str, Any]:
    levels = {sku: await use_tool("stock_level", role="analyst", sku=sku) for sku in ("SKU-1", "SKU-2", "SKU-3")}
    return {"low": {sku: r["result"]["units"] for sku, r in levels.items() if r["result"]["units"] < TARGET}}


async def reorder(state: RestockState) -> dict[str, Any]:
    for sku, units in state["low"].items():  # a refusal comes back as an answer, audited; the run goes on
        await use_tool("reorder_stock", role="optimizer", sku=sku, quantity=TARGET - units)
    return {}


async def decide(state: RestockState) -> dict[str, Any]:
    decision = await Agent(role="strategist", tools=[], output=Decision).run(
        goal=state["goal"], actions=actions_taken(), variables={"stage": "decide"})
    return {"decision": decision.model_dump()}


graph = StateGraph(RestockState)
graph.add_node("check", check, metadata={"agent": "analyst"})
graph.add_node("reorder", reorder, metadata={"agent": "optimizer"})
graph.add_node("decide", decide, metadata={"agent": "strategist"})
graph.add_edge(START, "check")
graph.add_edge("check", "reorder")
graph.add_edge("reorder", "decide")
graph.add_edge("decide", END)
