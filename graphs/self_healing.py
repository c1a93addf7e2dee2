"""Self-healing services: a health monitor finds degraded services, a repair agent scales, restarts or rolls them back within policy, a verifier re-checks, and an escalation agent notifies operators of what stays broken.

    monitor → repair ⇉ (one per degraded service, Send) → verify → repair again (bounded) | escalate → decide

The monitor and the verifier are deterministic checks over the world's metrics; the repair and escalation
steps are agents (the optimizer's tools, through the gateway and the policy). The repair agent picks the
repair the metrics point at: a restart for a transient fault (memory near full), a rollback for a release
that errs more than the one before it, more replicas for an overload. Repair gets at most ``MAX_ATTEMPTS``
rounds; what is still degraded after them is escalated, never retried forever.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from agentmesh import Agent, Decision, Finding, actions_taken, record_event, use_tool

EXAMPLE_GOAL = "Check the health of every service and repair what is degraded within policy; escalate what cannot be repaired."

MAX_ATTEMPTS = 2
"""Repair rounds before escalation."""
DEGRADED = ("saturated", "overloaded", "erroring")
"""Service statuses that need repair (``over-provisioned`` costs money but serves users fine)."""
REPAIR_TOOLS = ("get_service_metrics", "simulate_scaling", "scale_service", "restart_service", "rollback_service")
"""What the repair agent may use (the policy still decides whether each call runs)."""
WRITES = ("scale_service", "restart_service", "rollback_service")


class HealthState(TypedDict, total=False):
    goal: str
    degraded: dict[str, dict[str, Any]]
    """Service name → its last metrics, for services still degraded."""
    attempt: int
    """Repair rounds done."""
    healed: list[str]
    findings: Annotated[list[dict[str, Any]], operator.add]
    checks: Annotated[list[str], operator.add]
    """Every monitor and verifier verdict, in words (why the graph went where it went)."""
    decision: dict[str, Any]


class RepairInput(TypedDict):
    goal: str
    service: dict[str, Any]
    attempt: int


def _named(goal: str, names: list[str]) -> list[str]:
    return [n for n in names if n in goal]


async def monitor(state: HealthState) -> dict[str, Any]:
    listing = await use_tool("list_services", role="analyst")
    services = listing.get("result", {}).get("services", []) if listing["status"] == "ok" else []
    # A goal that names services watches only those; otherwise every service is watched.
    watched = _named(state["goal"], [s["name"] for s in services]) or [s["name"] for s in services]
    degraded = {s["name"]: s for s in services if s["name"] in watched and s["status"] in DEGRADED}
    checks = [f"monitor: {name} is {s['status']} (p95 {s['p95_ms']} ms, CPU {s['cpu_pct']}%, errors "
              f"{s['error_rate']:.1%})" for name, s in degraded.items()]
    if not degraded:
        checks.append(f"monitor: all {len(watched)} watched services are healthy; no action needed")
    record_event("health_check", degraded=sorted(degraded), watched=len(watched))
    return {"degraded": degraded, "attempt": 0, "healed": [], "checks": checks}


def route_repairs(state: HealthState) -> list[Send] | str:
    if not state.get("degraded"):
        return "decide"
    return [Send("repair", RepairInput(goal=state["goal"], service=s, attempt=state.get("attempt", 0) + 1))
            for s in state["degraded"].values()]


async def repair(state: RepairInput) -> dict[str, Any]:
    s = state["service"]
    step = {"id": f"fix-{state['attempt']}-{s['name']}"[:16], "role": "optimizer", "instruction": (
        f"Repair {s['name']}: it is {s['status']} with p95 {s['p95_ms']} ms, CPU {s['cpu_pct']}% and error rate "
        f"{s['error_rate']:.1%} at {s['replicas']} replicas. Read its metrics and make the one repair they point "
        f"at: restart it if a transient fault explains it (memory near full), roll it back if its release errs or is "
        f"slower than the previous release, scale it within policy if more capacity helps; change nothing if none "
        f"fits (attempt {state['attempt']} of {MAX_ATTEMPTS}).")}
    found = await Agent(role="optimizer", tools=list(REPAIR_TOOLS), output=Finding).run(goal=state["goal"], step=step)
    return {"findings": [{**found.model_dump(), "step_id": step["id"], "agent": "optimizer"}]}


async def verify(state: HealthState) -> dict[str, Any]:
    still, healed, checks = {}, list(state.get("healed", [])), []
    for name in state.get("degraded", {}):
        read = await use_tool("get_service_metrics", role="analyst", service=name)
        m = read.get("result") or {}
        if read["status"] == "ok" and m.get("status") not in DEGRADED:
            healed.append(name)
            checks.append(f"verifier: {name} is {m.get('status')} now (p95 {m.get('p95_ms')} ms, "
                          f"{m.get('replicas')} replicas)")
        else:
            still[name] = {"name": name, **m} if m else state["degraded"][name]
            checks.append(f"verifier: {name} is still {m.get('status', 'unreadable')} after attempt "
                          f"{state.get('attempt', 0) + 1}")
    record_event("health_verified", healed=healed, degraded=sorted(still))
    return {"degraded": still, "healed": healed, "attempt": state.get("attempt", 0) + 1, "checks": checks}


def after_verify(state: HealthState) -> list[Send] | str:
    if not state.get("degraded"):
        return "decide"
    if state.get("attempt", 0) >= MAX_ATTEMPTS:
        return "escalate"
    # Only a service the last round changed can improve by repeating; one the repair left alone is escalated.
    changed = {a["args"].get("service") for a in actions_taken() if a["tool"] in WRITES and a["status"] == "ok"}
    if not changed & set(state["degraded"]):
        return "escalate"
    return route_repairs(state)


async def escalate(state: HealthState) -> dict[str, Any]:
    names = ", ".join(sorted(state.get("degraded", {})))
    step = {"id": "escalate", "role": "optimizer", "instruction": (
        f"Escalate: repair failed for {names} after {state.get('attempt', 0)} attempts. Read each one's metrics "
        f"and notify operations with what is wrong and what was tried, so a person can take over.")}
    agent = Agent(role="optimizer", tools=["get_service_metrics", "notify_operations"], output=Finding)
    found = await agent.run(goal=state["goal"], step=step, findings=state.get("findings") or None)
    return {"findings": [{**found.model_dump(), "step_id": "escalate", "agent": "optimizer"}],
            "checks": [f"escalated to operators: {names}"]}


async def decide(state: HealthState) -> dict[str, Any]:
    findings = list(state.get("findings") or [])
    findings.append({"step_id": "checks", "agent": "monitor", "summary": "; ".join(state.get("checks", [])),
                     "observations": [], "recommendations": []})
    decision = await Agent(role="strategist", tools=[], output=Decision).run(
        goal=state["goal"], findings=findings, actions=actions_taken(), variables={"stage": "decide"})
    assert isinstance(decision, Decision)
    if state.get("degraded"):
        # The verifier's reading outranks the model's wording: a service still degraded is not "achieved".
        still = sorted(state["degraded"])
        decision.open_risks = [f"still degraded, escalated to operators: {n}" for n in still] + decision.open_risks
        if decision.outcome in ("achieved", "no_action_needed"):
            decision.outcome = "partially_achieved" if state.get("healed") else "escalated"
            decision.rationale = (decision.rationale + f" The verifier found {', '.join(still)} still degraded after "
                                  f"{state.get('attempt', 0)} repair attempt(s), so the outcome is "
                                  f"{decision.outcome.replace('_', ' ')}.")[:4000]
    decision.open_risks = decision.open_risks[:10]
    record_event("decision", decision=decision.model_dump())
    return {"decision": decision.model_dump()}


graph = StateGraph(HealthState)
graph.add_node("monitor", monitor, metadata={"agent": "analyst"})
graph.add_node("repair", repair, metadata={"agent": "optimizer"})
graph.add_node("verify", verify, metadata={"agent": "analyst"})
graph.add_node("escalate", escalate, metadata={"agent": "optimizer"})
graph.add_node("decide", decide, metadata={"agent": "strategist"})
graph.add_edge(START, "monitor")
graph.add_conditional_edges("monitor", route_repairs, ["repair", "decide"])
graph.add_edge("repair", "verify")
graph.add_conditional_edges("verify", after_verify, ["repair", "escalate", "decide"])
graph.add_edge("escalate", "decide")
graph.add_edge("decide", END)
