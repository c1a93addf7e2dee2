"""Tool call: one tool called through the gateway under a run of its own (each call an MCP client makes).

    call (the named tool, as the named role: validation, policy, approval, idempotency, audit) → END

The goal names the tool, the role it is called as and its arguments as a JSON object; ``goal_for`` writes it:

    Call get_service_metrics as analyst with {"service": "checkout-api"}

`agentmesh mcp serve` starts one such run per tool call, so every call has a run id, an audit record and, when the
policy asks for it, an approval that pauses the run until `agentmesh approve RUN_ID`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from agentmesh import Decision
from agentmesh.agents.context import current_run, current_step
from agentmesh.core.exceptions import UserError

EXAMPLE_GOAL = 'Call get_service_metrics as analyst with {"service": "checkout-api"}'
GOAL = re.compile(r"(?s)^\s*Call ([A-Za-z0-9_.-]+) as ([A-Za-z0-9_-]+) with (\{.*\})\s*$")


def goal_for(tool: str, role: str, arguments: dict[str, Any]) -> str:
    """The goal of a run that calls ``tool`` as ``role`` with ``arguments``."""
    return f"Call {tool} as {role} with {json.dumps(arguments, sort_keys=True, ensure_ascii=False)}"


def parse_goal(goal: str) -> tuple[str, str, dict[str, Any]]:
    found = GOAL.match(goal)
    if found is None:
        raise UserError(f"say which tool to call, as which role, with which arguments, e.g. {EXAMPLE_GOAL!r}")
    try:
        arguments = json.loads(found.group(3))
    except ValueError as exc:
        raise UserError(f"the arguments are not a JSON object: {exc}") from None
    return found.group(1), found.group(2), arguments


class ToolCallState(TypedDict, total=False):
    goal: str
    decision: dict[str, Any]


async def call(state: ToolCallState) -> dict[str, Any]:
    tool, role, arguments = parse_goal(state["goal"])
    run, step = current_run(), current_step()
    # Not `use_tool`: its keyword `role` would collide with a tool argument of that name. The call id depends on the
    # run only, so a resumed run (after an approval) reaches the same call and finds its verdict.
    call_id = "call_" + hashlib.sha256(f"{run.run_id}|{state['goal']}".encode()).hexdigest()[:20]
    answer = json.loads(await run.gateway.call({"id": call_id, "name": tool, "args": arguments}, agent=role,
                                               step_key=step.key, node=step.node, offered={tool}))
    ok = answer["status"] == "ok"
    decision = Decision(
        summary=f"{tool} called as {role}: " + ("done." if ok else f"{answer['status']} — {answer.get('error')}"),
        rationale="One tool call through the gateway, on the tool_call graph (agentmesh mcp serve runs one for each "
                  "call a client makes); its result is in the run's audit.",
        confidence=1.0, outcome="achieved" if ok else "not_achieved")
    return {"decision": decision.model_dump()}


graph = StateGraph(ToolCallState)
graph.add_node("call", call)
graph.add_edge(START, "call")
graph.add_edge("call", END)
