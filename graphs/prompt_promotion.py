"""Prompt promotion: make an evolved prompt version active once a person approves it (`agentmesh approve`).

    promote (promote_prompt, a destructive tool: the run pauses for approval) → END

`agentmesh evolve --require-approval` starts this run for the version its evidence supports; the approval is
the same as for any tool call — `agentmesh approve RUN_ID` (or `--reject`), the HTTP API or the chat.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from agentmesh import Decision, use_tool
from agentmesh.agents.context import current_run
from agentmesh.core.exceptions import NotFoundError, UserError

EXAMPLE_GOAL = "Promote version 2 of the optimizer prompt"
GOAL = re.compile(r"(?i)\bpromote version (\d+) of the ([a-z][a-z0-9_-]*) prompt\b")


class PromotionState(TypedDict, total=False):
    goal: str
    decision: dict[str, Any]


async def promote(state: PromotionState) -> dict[str, Any]:
    found = GOAL.search(state["goal"])
    if found is None:
        raise UserError(f"say which version to promote, e.g. {EXAMPLE_GOAL!r}")
    version, role = int(found.group(1)), found.group(2).lower()
    from agentmesh.persistence.audit import list_calls
    from agentmesh.prompts import versions

    run = current_run()
    try:
        status = versions.get_version(run.engine, role, version)["status"]
    except NotFoundError:  # e.g. the example goal in a fresh home: an answer saying how to get one, not a failure
        status = None
    asked = any(c.tool == "promote_prompt" for c in list_calls(run.engine, run.run_id))  # a resume replays it
    if status is None:
        answer = {"status": "refused", "error": f"there is no such version yet (`agentmesh prompts list {role}`); "
                                                f"`agentmesh evolve --suite SUITE --agent {role} --require-approval` proposes one"}
    elif status != "pending_approval" and not asked:  # nobody is asked to approve what has no evidence
        answer = {"status": "refused", "error": f"it is {status}, not awaiting approval after an evolution round"}
    else:
        answer = await use_tool("promote_prompt", role="evolver", agent=role, version=version)
    if answer["status"] == "ok":
        done = answer["result"]
        decision = Decision(summary=f"Version {version} of the {role} prompt is active (was {done['previous']}), "
                                    f"approved by {done['approved_by']}.",
                            rationale="An evolution round found it better on the evidence and a person approved it.",
                            confidence=1.0, outcome="achieved")
    else:
        if answer["status"] == "rejected" and status == "pending_approval":
            versions.set_status(run.engine, role, version, "rejected", actor="person (approval)",
                                reason=f"promotion {answer['error']} in run {run.run_id}")
        decision = Decision(summary=f"Version {version} of the {role} prompt was not promoted: {answer['error']}",
                            rationale="A promotion needs the evidence of an evolution round and a person's approval.",
                            confidence=1.0, outcome="not_achieved")
    return {"decision": decision.model_dump()}


graph = StateGraph(PromotionState)
graph.add_node("promote", promote, metadata={"agent": "evolver"})
graph.add_edge(START, "promote")
graph.add_edge("promote", END)
