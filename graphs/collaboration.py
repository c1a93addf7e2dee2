"""Collaborative deliberation: the analyst, optimizer and innovator each propose, critique each other's proposals, the optimizer carries out the option within policy, the strategist decides, and every agent votes — dissent is recorded with the decision.

    propose (analyst ∥ optimizer ∥ innovator) → critique (the same three) → act → decide
            → vote (the same three) → record → END

One pass, no loops: proposals and critiques change nothing in the world (read-only tools and what-if
simulations); only ``act`` may change it, through the gateway and the policy. A vote is a ``Review``:
``decide`` means the agent backs the decision, ``replan`` is dissent with its reason.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from agentmesh import Agent, Decision, Finding, Review, actions_taken, record_event

EXAMPLE_GOAL = "payments-api p95 must get under 150 ms for the launch; agree on the best option and carry it out within policy."

ROLES = ("analyst", "optimizer", "innovator")
READ_ONLY = ["list_services", "get_service_metrics", "simulate_scaling", "list_datasets", "profile_dataset",
             "list_tickets", "get_ticket"]
"""Tools for proposing and critiquing: reading and what-if simulation, never a change."""


class DeliberationState(TypedDict, total=False):
    goal: str
    proposals: Annotated[list[dict[str, Any]], operator.add]
    critiques: Annotated[list[dict[str, Any]], operator.add]
    findings: Annotated[list[dict[str, Any]], operator.add]
    votes: Annotated[list[dict[str, Any]], operator.add]
    dissent: list[dict[str, Any]]
    decision: dict[str, Any]


class TurnInput(TypedDict):
    goal: str
    role: str
    seen: list[dict[str, Any]]
    decision: dict[str, Any]


async def propose(state: TurnInput) -> dict[str, Any]:
    step = {"id": f"propose-{state['role'][:4]}", "role": state["role"], "instruction": (
        f"Propose, as the {state['role']}, the option you would take for the goal: read the current state, "
        f"try what-if simulations where they help, and say what you recommend and why. Change nothing.")}
    agent = Agent(role=state["role"], tools=[t for t in READ_ONLY], output=Finding)
    found = await agent.run(goal=state["goal"], step=step)
    return {"proposals": [{**found.model_dump(), "step_id": step["id"], "agent": state["role"]}]}


async def critique(state: TurnInput) -> dict[str, Any]:
    step = {"id": f"critic-{state['role'][:4]}", "role": state["role"], "instruction": (
        f"Critique, as the {state['role']}, the other agents' proposals in the findings: check their numbers "
        f"against the current state, name what they miss, and say which option you back. Change nothing.")}
    others = [p for p in state["seen"] if p["agent"] != state["role"]]
    found = await Agent(role=state["role"], tools=list(READ_ONLY), output=Finding).run(
        goal=state["goal"], step=step, findings=others or None)
    return {"critiques": [{**found.model_dump(), "step_id": step["id"], "agent": state["role"]}]}


async def act(state: DeliberationState) -> dict[str, Any]:
    step = {"id": "act", "role": "optimizer", "instruction": (
        "Carry out the option the proposals and critiques converge on, within policy, and report the numbers "
        "before and after. If no change helps, change nothing and say why.")}
    seen = [*state.get("proposals", []), *state.get("critiques", [])]
    found = await Agent(role="optimizer", output=Finding).run(goal=state["goal"], step=step, findings=seen)
    return {"findings": [{**found.model_dump(), "step_id": "act", "agent": "optimizer"}]}


async def decide(state: DeliberationState) -> dict[str, Any]:
    seen = [*state.get("proposals", []), *state.get("critiques", []), *state.get("findings", [])]
    decision = await Agent(role="strategist", tools=[], output=Decision).run(
        goal=state["goal"], findings=seen, actions=actions_taken(), variables={"stage": "decide"})
    return {"decision": decision.model_dump()}


async def vote(state: TurnInput) -> dict[str, Any]:
    d = state["decision"]
    seen = [*state["seen"], {"step_id": "decision", "agent": "strategist", "summary": d["summary"],
                             "observations": [], "recommendations": []}]
    # Round 1 of 2: an agent may object ("replan") when the decision leaves the goal unmet.
    review = await Agent(role=state["role"], tools=[], output=Review).run(
        goal=state["goal"], findings=seen, actions=actions_taken(), round_info=(1, 2), variables={"stage": "review"})
    assert isinstance(review, Review)
    return {"votes": [{"agent": state["role"], "backs": review.verdict == "decide", "reason": review.reason}]}


def record(state: DeliberationState) -> dict[str, Any]:
    dissent = [v for v in state.get("votes", []) if not v["backs"]]
    decision = dict(state["decision"])
    decision["votes"] = sorted(state.get("votes", []), key=lambda v: v["agent"])
    decision["dissent"] = dissent
    risks = [f"dissent ({v['agent']}): {v['reason']}" for v in dissent] + list(decision.get("open_risks") or [])
    decision["open_risks"] = [r[:500] for r in risks[:10]]
    record_event("deliberation_recorded", backing=[v["agent"] for v in state.get("votes", []) if v["backs"]],
                 dissent=[{"agent": v["agent"], "reason": v["reason"]} for v in dissent])
    return {"dissent": dissent, "decision": decision}


def _turn(kind: str, role: str):  # type: ignore[no-untyped-def]
    async def turn(state: DeliberationState) -> dict[str, Any]:
        if kind == "propose":
            return await propose(TurnInput(goal=state["goal"], role=role, seen=[], decision={}))
        if kind == "critique":
            return await critique(TurnInput(goal=state["goal"], role=role, seen=state.get("proposals", []), decision={}))
        seen = [*state.get("proposals", []), *state.get("critiques", []), *state.get("findings", [])]
        return await vote(TurnInput(goal=state["goal"], role=role, seen=seen, decision=state["decision"]))

    turn.__name__ = f"{kind}_{role}"
    return turn


# The three roles run side by side at each stage (parallel branches); a stage starts when the last
# branch of the one before has finished.
graph = StateGraph(DeliberationState)
for _kind in ("propose", "critique", "vote"):
    for _role in ROLES:
        graph.add_node(f"{_kind}_{_role}", _turn(_kind, _role), metadata={"agent": _role})
graph.add_node("act", act, metadata={"agent": "optimizer"})
graph.add_node("decide", decide, metadata={"agent": "strategist"})
graph.add_node("record", record, metadata={"agent": "strategist"})
for _role in ROLES:
    graph.add_edge(START, f"propose_{_role}")
    graph.add_edge([f"propose_{r}" for r in ROLES], f"critique_{_role}")
    graph.add_edge("decide", f"vote_{_role}")
graph.add_edge([f"critique_{r}" for r in ROLES], "act")
graph.add_edge("act", "decide")
graph.add_edge([f"vote_{r}" for r in ROLES], "record")
graph.add_edge("record", END)
