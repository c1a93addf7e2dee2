"""A plain LangGraph graph a user already had: made durable by agentmesh with no change to its nodes."""

from typing import TypedDict

from langgraph.graph import END, START, StateGraph

EXAMPLE_GOAL = "Summarise the goal in one line"


class State(TypedDict, total=False):
    goal: str
    words: int
    decision: dict


def count(state: State) -> dict:
    return {"words": len(state["goal"].split())}


def summarise(state: State) -> dict:
    return {"decision": {"summary": f"The goal has {state['words']} words.", "rationale": "Counted them.",
                         "confidence": 1.0, "open_risks": [], "outcome": "achieved"}}


graph = StateGraph(State)
graph.add_node("count", count)
graph.add_node("summarise", summarise)
graph.add_edge(START, "count")
graph.add_edge("count", "summarise")
graph.add_edge("summarise", END)
