"""A worker step as a small state machine: the next tool call from the calls made so far, then a finding."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from agentmesh.models.offline.conversation import Call, Conversation, names_in
from agentmesh.plugins.operations.offline.data import data_finding, data_next
from agentmesh.plugins.operations.offline.goals import GoalReading, domain_scores, read_goal
from agentmesh.plugins.operations.offline.ops import ops_finding, ops_next
from agentmesh.plugins.operations.offline.steps import part_finding, part_next, part_of
from agentmesh.plugins.operations.offline.support import support_finding, support_next

__all__ = ["MAX_CALLS", "finding", "next_calls", "role_of"]

# Calls per step before the finding is forced: enough for a support optimizer's five tickets (read + act
# each, in parallel turns) plus the listing, and far more than a service or dataset step needs.
MAX_CALLS = 12

_DOMAIN_TOOLS = {
    "ops": ("get_service_metrics", "list_services", "scale_service", "simulate_scaling"),
    "data": ("profile_dataset", "list_datasets", "clean_dataset"),
    "support": ("list_tickets", "get_ticket", "resolve_ticket", "escalate_ticket"),
}


def _one(call: Call | None) -> list[Call]:
    return [call] if call is not None else []


# A turn's next calls by domain (ops and data make one a turn; support reads or acts on several tickets at once).
_NEXT: dict[str, Callable[[Conversation, GoalReading, str, bool], list[Call]]] = {
    "ops": lambda *state: _one(ops_next(*state)), "data": lambda *state: _one(data_next(*state)),
    "support": support_next,
}
_FINDING = {"ops": ops_finding, "data": data_finding, "support": support_finding}
_VERIFY = re.compile(r"\b(verif\w*|confirm\w*|re-?check\w*|re-?measure\w*|re-?read|validate\w*|check (?:again|after|"
                     r"whether|that|if))\b", re.I)
_PART_VERIFY = re.compile(r"\bpart \d+ of \d+: verify", re.I)
_ESCALATE = re.compile(r"\b(escalat\w*|fail\w*|could not|cannot)\b", re.I)
_WRITE_TOOLS = ("scale_service", "clean_dataset", "resolve_ticket", "escalate_ticket")


def role_of(conv: Conversation) -> str:
    role = conv.step.get("role", "").lower()
    if role:
        return role
    for name in ("optimizer", "innovator", "analyst", "strategist"):
        if name in conv.system.lower():
            return name
    return "optimizer" if any(conv.offered(t) for t in _WRITE_TOOLS) else "analyst"


def _domain(conv: Conversation, goal: GoalReading) -> str:
    offered = {d for d, tools in _DOMAIN_TOOLS.items() if any(conv.offered(t) for t in tools)}
    if goal.domain in offered:
        scores = domain_scores(conv.instruction)
        best = max(scores, key=lambda d: (scores[d], d == goal.domain))
        return best if scores[best] and best in offered else goal.domain
    return "unknown"


def _state(conv: Conversation) -> tuple[GoalReading, str, str, bool]:
    goal = read_goal(conv.goal)
    role = role_of(conv)
    verify = bool(_VERIFY.search(conv.instruction)) and role != "optimizer"
    return goal, role, _domain(conv, goal), verify


def next_calls(conv: Conversation) -> list[Call]:
    """The next tool calls of this step (made in one turn), or none when it is time for the finding."""
    role = role_of(conv)
    part = part_of(conv, role, bool(_PART_VERIFY.search(conv.instruction)) and role != "optimizer")
    if part is not None:
        # A call not offered, or one already made with the same arguments, ends the step instead of looping.
        wanted = part_next(conv, part)
        return [] if any(not conv.offered(c.name) or conv.made(c) for c in wanted) else wanted
    if len(conv.observations) >= MAX_CALLS:
        return []
    goal, role, domain, verify = _state(conv)
    calls: list[Call]
    if domain == "unknown":
        call = next((conv.call(t) for t in ("list_services", "list_datasets", "list_tickets")
                     if conv.offered(t) and not conv.calls(t)), None)
        calls = _one(call)
    else:
        calls = _NEXT[domain](conv, goal, role, verify)
    # The goal or the step itself may ask to tell operations (an escalation step does).
    notify = goal.notify or (bool(conv.instruction) and read_goal(conv.instruction).notify)
    if domain != "unknown" and not calls and notify and role == "optimizer" and conv.offered("notify_operations") \
            and not conv.calls("notify_operations") and conv.observations:
        summary, _, _ = _FINDING[domain](conv, goal, role, verify)
        severity = "warning" if _ESCALATE.search(conv.instruction) else "info"
        message = f"Needs a person (the automated repair did not succeed): {summary}" if severity == "warning" \
            else summary
        calls = [conv.call("notify_operations", message=message[:500], severity=severity)]
    # A call not offered, or one already made with the same arguments, ends the step instead of looping.
    if any(not conv.offered(c.name) or conv.made(c) for c in calls):
        return []
    return calls


def _compact(value: Any, limit: int = 240) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finding(conv: Conversation) -> dict[str, Any]:
    goal, role, domain, verify = _state(conv)
    part = part_of(conv, role, bool(_PART_VERIFY.search(conv.instruction)) and role != "optimizer")
    if part is not None:
        summary, recs, confidence = part_finding(conv, part)
    elif domain == "unknown":
        known = []
        for tool in ("list_services", "list_datasets", "list_tickets"):
            obs = conv.last_ok(tool)
            if obs is not None:
                known.append(f"{tool.removeprefix('list_')}: {', '.join(names_in(obs.result)[:10]) or 'none'}")
        summary = ("The goal names nothing the tools act on; no action was taken. Known " + "; ".join(known) + "."
                   if known else "The goal names nothing the offered tools act on; no action was taken.")
        recs, confidence = ["Restate the goal naming a service, dataset or ticket."], 0.3
    else:
        summary, recs, confidence = _FINDING[domain](conv, goal, role, verify)
    observations = []
    for obs in [o for o in conv.observations if not o.name.startswith("submit_")][:20]:
        args = ", ".join(f"{k}={_compact(v, 60)}" for k, v in obs.args.items())
        body = _compact(obs.result) if obs.ok else f"{obs.status}: {obs.error[:200]}"
        observations.append(f"{obs.name}({args}) -> {body}")
    return {"summary": summary[:2000] or "Nothing to report.", "observations": observations,
            "recommendations": [r[:500] for r in recs[:10]], "confidence": confidence}
