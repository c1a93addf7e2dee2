"""Infrastructure management: scaling, cost-optimisation and maintenance agents work concurrently; a coordinator resolves their conflicts (opposite changes to one service), records why, and applies the result within policy.

    survey → scaling ∥ cost ∥ maintenance (Send) → coordinate → apply → decide

Each agent reviews the fleet from its mandate and proposes replica changes by an explicit rule:

- scaling: a service above 70% CPU gets the replicas that bring it to about 70%;
- cost: a service below 55% CPU is cut to the replicas that run it at about 75%;
- maintenance: a service that is erroring (or runs a release candidate) gets one surge replica, so a rolling
  restart never drops below its current capacity.

When two agents want opposite changes to one service, the coordinator decides by a fixed order —
reliability before cost: a degraded service keeps the change that protects users; a healthy one takes the
saving — and records the conflict, the winner and the reason in the state and as a ``conflict_resolved``
event. Changes are clamped to the policy's range before they are applied (cuts first, so the cost ceiling
holds for the increases).
"""

from __future__ import annotations

import math
import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from agentmesh import Agent, Decision, Finding, actions_taken, record_event, use_tool

EXAMPLE_GOAL = ("Review the service fleet: scale what is overloaded, cut spare capacity, and plan maintenance for what is "
                "erroring; resolve any conflicts between those changes.")

SCALE_UP_ABOVE, SCALE_UP_TO = 70.0, 70.0
CUT_BELOW, CUT_TO = 55.0, 75.0
# Who wins a conflict on a degraded service, and on a healthy one.
_PRIORITY_DEGRADED = ("maintenance", "scaling", "cost")
_PRIORITY_HEALTHY = ("cost", "scaling", "maintenance")
_AGENTS = {"scaling": "analyst", "cost": "innovator", "maintenance": "analyst"}


class InfraState(TypedDict, total=False):
    goal: str
    fleet: list[dict[str, Any]]
    proposals: Annotated[list[dict[str, Any]], operator.add]
    findings: Annotated[list[dict[str, Any]], operator.add]
    conflicts: list[dict[str, Any]]
    """Each conflict: service, the proposals, the winner and why."""
    changes: list[dict[str, Any]]
    decision: dict[str, Any]


class AgentInput(TypedDict):
    goal: str
    mandate: str
    fleet: list[dict[str, Any]]


def _propose(mandate: str, s: dict[str, Any]) -> dict[str, Any] | None:
    r, cpu = s["replicas"], s["cpu_pct"]
    if mandate == "scaling" and cpu > SCALE_UP_ABOVE:
        want, why = math.ceil(r * cpu / SCALE_UP_TO), f"CPU {cpu}% is above {SCALE_UP_ABOVE:g}%"
    elif mandate == "cost" and cpu < CUT_BELOW:
        want, why = max(1, math.ceil(r * cpu / CUT_TO)), f"CPU {cpu}% is below {CUT_BELOW:g}%; ${s['hourly_cost']}/h"
    elif mandate == "maintenance" and (s["status"] == "erroring" or "-rc" in str(s.get("deployed_version", ""))):
        want, why = r + 1, f"{s['status']}, error rate {s['error_rate']:.1%}: a rolling restart needs one surge replica"
    else:
        return None
    if want == r:
        return None
    return {"agent": mandate, "service": s["name"], "from": r, "to": want, "why": why, "status": s["status"]}


async def survey(state: InfraState) -> dict[str, Any]:
    listing = await use_tool("list_services", role="analyst")
    fleet = []
    for s in (listing.get("result") or {}).get("services", []):
        read = await use_tool("get_service_metrics", role="analyst", service=s["name"])
        fleet.append({**s, **(read.get("result") or {}), "name": s["name"]})
    return {"fleet": fleet}


def fan_out(state: InfraState) -> list[Send]:
    return [Send(mandate, AgentInput(goal=state["goal"], mandate=mandate, fleet=state["fleet"])) for mandate in _AGENTS]


def _agent_node(mandate: str):  # type: ignore[no-untyped-def]
    async def run(state: AgentInput) -> dict[str, Any]:
        proposals = [p for s in state["fleet"] if (p := _propose(mandate, s))]
        listed = "; ".join(f"{p['service']} {p['from']}→{p['to']} ({p['why']})" for p in proposals) or "none"
        step = {"id": mandate, "role": _AGENTS[mandate], "instruction": (
            f"As the {mandate} agent, check these proposed replica changes against the services' current "
            f"metrics and report risks: {listed}.")}
        found = await Agent(role=_AGENTS[mandate], output=Finding).run(goal=state["goal"], step=step)
        finding = {**found.model_dump(), "step_id": mandate, "agent": _AGENTS[mandate]}
        finding["summary"] = f"{mandate} agent proposes: {listed}. Review: {finding['summary']}"[:2000]
        return {"proposals": proposals, "findings": [finding]}

    run.__name__ = mandate
    return run


def coordinate(state: InfraState) -> dict[str, Any]:
    by_service: dict[str, list[dict[str, Any]]] = {}
    for p in state.get("proposals", []):
        by_service.setdefault(p["service"], []).append(p)
    limits = {s["name"]: s for s in state["fleet"]}
    changes, conflicts = [], []
    for service, props in sorted(by_service.items()):
        ups = [p for p in props if p["to"] > p["from"]]
        downs = [p for p in props if p["to"] < p["from"]]
        if ups and downs:
            degraded = props[0]["status"] in ("overloaded", "saturated", "erroring")
            order = _PRIORITY_DEGRADED if degraded else _PRIORITY_HEALTHY
            winner = min(props, key=lambda p: order.index(p["agent"]))
            why = (f"{service} is {props[0]['status']}: reliability comes before cost, so the {winner['agent']} "
                   f"agent's change ({winner['from']}→{winner['to']}) wins" if degraded else
                   f"{service} is {props[0]['status']}: the saving is safe, so the {winner['agent']} agent's "
                   f"change ({winner['from']}→{winner['to']}) wins")
            conflict = {"service": service, "proposals": props, "winner": winner["agent"], "why": why}
            conflicts.append(conflict)
            record_event("conflict_resolved", service=service, winner=winner["agent"],
                         losers=[p["agent"] for p in props if p is not winner], why=why)
            chosen = winner
        else:
            # Same direction: the largest increase, or the gentlest cut.
            chosen = max(ups, key=lambda p: p["to"]) if ups else max(downs, key=lambda p: p["to"])
        s = limits[service]
        lo = max(int(s.get("min_replicas", 1)), chosen["from"] - int(s.get("max_change_per_call", 5)))
        hi = min(int(s.get("max_replicas", 20)), chosen["from"] + int(s.get("max_change_per_call", 5)))
        to = min(max(chosen["to"], lo), hi)
        if to != chosen["from"]:
            note = "" if to == chosen["to"] else f" (clamped from {chosen['to']} to the policy's {lo}..{hi})"
            changes.append({"service": service, "from": chosen["from"], "to": to, "by": chosen["agent"],
                            "why": chosen["why"] + note})
    changes.sort(key=lambda c: c["to"] - c["from"])  # cuts first: the cost ceiling must hold for the increases
    return {"conflicts": conflicts, "changes": changes}


async def apply(state: InfraState) -> dict[str, Any]:
    lines = []
    for c in state.get("changes", []):
        done = await use_tool("scale_service", role="optimizer", service=c["service"], replicas=c["to"])
        lines.append(f"{c['service']} {c['from']}→{c['to']} ({c['by']}: {c['why']}): {done['status']}"
                     + (f" — {done.get('error')}" if done["status"] != "ok" else ""))
    summary = "Applied: " + ("; ".join(lines) or "no changes")
    return {"findings": [{"step_id": "apply", "agent": "optimizer", "summary": summary[:2000],
                          "observations": [], "recommendations": [], "confidence": 0.8}]}


async def decide(state: InfraState) -> dict[str, Any]:
    conflicts = state.get("conflicts", [])
    resolved = [f"conflict on {c['service']}: " + ", ".join(f"{p['agent']} wanted {p['from']}→{p['to']}"
                                                             for p in c["proposals"]) + f"; {c['why']}"
                for c in conflicts]
    findings = list(state.get("findings") or [])
    if resolved:
        findings.append({"step_id": "coordinate", "agent": "strategist", "summary": " ".join(resolved)[:2000],
                         "observations": [], "recommendations": []})
    decision = await Agent(role="strategist", tools=[], output=Decision).run(
        goal=state["goal"], findings=findings, actions=actions_taken(), variables={"stage": "decide"})
    assert isinstance(decision, Decision)
    if resolved:  # the coordinator's reasons are part of the decision, whatever the model wrote
        decision.rationale = (decision.rationale + " Conflicts resolved: " + " ".join(resolved))[:4000]
    return {"decision": {**decision.model_dump(), "conflicts": conflicts}}


graph = StateGraph(InfraState)
graph.add_node("survey", survey, metadata={"agent": "analyst"})
for _mandate, _role in _AGENTS.items():
    graph.add_node(_mandate, _agent_node(_mandate), metadata={"agent": _role})
    graph.add_edge(_mandate, "coordinate")
graph.add_node("coordinate", coordinate, metadata={"agent": "strategist"})
graph.add_node("apply", apply, metadata={"agent": "optimizer"})
graph.add_node("decide", decide, metadata={"agent": "strategist"})
graph.add_edge(START, "survey")
graph.add_conditional_edges("survey", fan_out, list(_AGENTS))
graph.add_edge("coordinate", "apply")
graph.add_edge("apply", "decide")
graph.add_edge("decide", END)
