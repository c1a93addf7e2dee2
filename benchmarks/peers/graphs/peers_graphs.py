"""The peer benchmark's workload written for agentmesh, two ways (run with ``--graph peers-agent|peers-react``).

- ``peers-agent``: one node, one ``Agent`` step: the analyst offered the three tools and its output tool;
  4 model requests (the last submits the finding), 3 tool calls through the gateway.
- ``peers-react``: the plain LangGraph ReAct graph of ``benchmarks/peers/react.py``, unchanged but for its tool
  node calling tools through the gateway (``use_tool``: policy and audit); agentmesh compiles it durably, each
  node a Prefect task (7 node runs).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from react import build, decision  # noqa: E402
from workload import TOOLS, goal  # noqa: E402

from agentmesh import Agent, Finding, use_tool  # noqa: E402

EXAMPLE_GOAL = goal("example")


class AgentState(TypedDict, total=False):
    goal: str
    decision: dict[str, Any]


analyst = Agent(role="analyst", tools=list(TOOLS), output=Finding)


async def investigate(state: AgentState) -> dict[str, Any]:
    finding = await analyst.run(goal=state["goal"])
    assert isinstance(finding, Finding)
    return {"decision": decision(finding.summary)}


agent_graph = StateGraph(AgentState)
agent_graph.add_node("investigate", investigate, metadata={"agent": "analyst"})
agent_graph.add_edge(START, "investigate")
agent_graph.add_edge("investigate", END)


async def through_gateway(name: str, args: dict[str, Any]) -> Any:
    return await use_tool(name, role="analyst", **args)


react_graph = build(call_tool=through_gateway)
