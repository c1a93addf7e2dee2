"""Customer service: sentiment and issue prediction over the open tickets, prioritised resolution within policy, escalation when outside it.

    triage → predict → handle ⇉ (one per ticket, most urgent first, Send) → decide

Triage reads the open tickets; prediction is deterministic and explained: the issue from the customer's
words, sentiment from the world's scorer, the route from the policy (a refund above what policy still
allows the ticket, a legal threat or possible fraud goes to a person). The optimizer then resolves or
escalates each ticket through the gateway, where the refund caps hold whatever it decides.
"""

from __future__ import annotations

import operator
import re
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from agentmesh import Agent, Decision, Finding, actions_taken, record_event, use_tool

EXAMPLE_GOAL = "Work through the open support tickets: predict what each customer needs, resolve the most urgent within policy and escalate the rest."

MAX_TICKETS = 5
"""Tickets handled per run, most urgent first."""
_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
_ISSUES = {
    "legal": r"\b(lawyer|attorney|lawsuit|legal|sue|court|solicitor)\b",
    "fraud": r"\b(fraud\w*|unauthori[sz]ed|hacked|stolen|phishing)\b",
    "billing": r"\b(charged|charge|refund|payment|money|invoice|price)\b",
    "damaged item": r"\b(broken|damaged|chipped|cracked|defective)\b",
    "delivery": r"\b(late|delivery|arrived|shipping|never came|lost)\b",
    "outage": r"\b(down|outage|error|cannot|can't|spins|timeout)\b",
}
_PERSON = ("legal", "fraud")
"""Issues a person handles whatever the amount."""


class ServiceState(TypedDict, total=False):
    goal: str
    tickets: list[dict[str, Any]]
    """The open tickets read, with their predictions, in the order they are handled."""
    findings: Annotated[list[dict[str, Any]], operator.add]
    decision: dict[str, Any]


class TicketInput(TypedDict):
    goal: str
    ticket: dict[str, Any]


def _issue(text: str) -> str:
    lowered = text.lower()
    return next((issue for issue, pattern in _ISSUES.items() if re.search(pattern, lowered)), "general")


async def triage(state: ServiceState) -> dict[str, Any]:
    listing = await use_tool("list_tickets", role="analyst", status="open")
    open_tickets = (listing.get("result") or {}).get("tickets", [])
    named = [t for t in open_tickets if t["id"] in state["goal"]]
    ranked = sorted(named or open_tickets, key=lambda t: _RANK.get(t.get("priority", "normal"), 2))[:MAX_TICKETS]
    tickets = []
    for t in ranked:
        read = await use_tool("get_ticket", role="analyst", ticket_id=t["id"])
        if read["status"] == "ok":
            tickets.append(read["result"])
    return {"tickets": tickets}


def predict(state: ServiceState) -> dict[str, Any]:
    predicted = []
    for t in state.get("tickets", []):
        message = t.get("customer_message") or {}
        issue = _issue(f"{message.get('subject', '')} {message.get('body', '')}")
        asked, allowed = float(t.get("requested_refund_usd") or 0), float(t.get("refundable_usd") or 0)
        if issue in _PERSON:
            route, why = "escalate", f"{issue} matters go to a person"
        elif asked > allowed:
            route, why = "escalate", f"the ${asked:g} asked is above the ${allowed:g} policy still allows this ticket"
        else:
            route, why = "resolve", f"within policy (refund ${asked:g} of ${allowed:g} allowed)"
        # Urgency first, then the angrier customer.
        urgency = _RANK.get(t.get("priority", "normal"), 2) + (0.5 if (t.get("sentiment_score") or 0) > -0.3 else 0)
        predicted.append({"id": t["id"], "priority": t.get("priority"), "sentiment": t.get("sentiment"),
                          "sentiment_score": t.get("sentiment_score"), "issue": issue, "requested_refund_usd": asked,
                          "refundable_usd": allowed, "route": route, "why": why, "urgency": urgency})
    predicted.sort(key=lambda p: p["urgency"])
    record_event("tickets_predicted", tickets=[{k: p[k] for k in ("id", "issue", "route", "why")} for p in predicted])
    return {"tickets": predicted}


def fan_out(state: ServiceState) -> list[Send] | str:
    if not state.get("tickets"):
        return "decide"
    return [Send("handle", TicketInput(goal=state["goal"], ticket=t)) for t in state["tickets"]]


async def handle(state: TicketInput) -> dict[str, Any]:
    t = state["ticket"]
    verb = "Resolve" if t["route"] == "resolve" else "Escalate"
    step = {"id": f"t-{t['id']}"[:16], "role": "optimizer", "instruction": (
        f"{verb} ticket {t['id']} ({t['priority']} priority, {t['sentiment']} sentiment, predicted issue: "
        f"{t['issue']}): {t['why']}. Read it first; resolve with a clear message and a refund only within "
        f"policy, otherwise escalate it with the reason.")}
    found = await Agent(role="optimizer", output=Finding).run(goal=state["goal"], step=step)
    return {"findings": [{**found.model_dump(), "step_id": step["id"], "agent": "optimizer"}]}


async def decide(state: ServiceState) -> dict[str, Any]:
    findings = list(state.get("findings") or []) + [{
        "step_id": "predict", "agent": "analyst", "observations": [], "recommendations": [],
        "summary": "Predictions: " + "; ".join(f"{t['id']} {t['issue']} → {t['route']} ({t['why']})"
                                               for t in state.get("tickets", [])) or "no open tickets"}]
    decision = await Agent(role="strategist", tools=[], output=Decision).run(
        goal=state["goal"], findings=findings, actions=actions_taken(), variables={"stage": "decide"})
    return {"decision": decision.model_dump()}


graph = StateGraph(ServiceState)
graph.add_node("triage", triage, metadata={"agent": "analyst"})
graph.add_node("predict", predict, metadata={"agent": "analyst"})
graph.add_node("handle", handle, metadata={"agent": "optimizer"})
graph.add_node("decide", decide, metadata={"agent": "strategist"})
graph.add_edge(START, "triage")
graph.add_edge("triage", "predict")
graph.add_conditional_edges("predict", fan_out, ["handle", "decide"])
graph.add_edge("handle", "decide")
graph.add_edge("decide", END)
