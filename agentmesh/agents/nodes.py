"""Helpers for a graph's own nodes: call a tool through the gateway, read the actions taken, record an event.

An agent node calls tools through its model; a deterministic node (a health check, a quality gate, a
router) calls them here, under a role, with the same validation, policy, approvals, idempotency and audit:

    from agentmesh import actions_taken, record_event, use_tool

    async def monitor(state):
        listing = await use_tool("list_services", role="analyst")
        degraded = [s["name"] for s in listing["result"]["services"] if s["status"] != "healthy"]
        record_event("health_check", degraded=degraded)
        return {"degraded": degraded}
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agentmesh.agents.context import current_run, current_step
from agentmesh.persistence.audit import list_calls

__all__ = ["actions_taken", "record_event", "use_tool"]


async def use_tool(name: str, /, *, role: str, **args: Any) -> dict[str, Any]:
    """Call one tool as ``role`` from inside a running node; returns the gateway's answer as a dict:
    ``{"status": "ok", "result": …}`` or ``{"status": "refused"|"failed"|"invalid"|"rejected", "error": …}``.

    A refusal is an answer, not an exception. The call id is derived from the node's checkpoint key, the
    tool, the arguments and how many identical calls the node made before, so a retried or resumed node
    reuses the recorded result instead of repeating a side effect.
    """
    run = current_run()
    scope = current_step()
    body = json.dumps([scope.key, name, args], sort_keys=True, default=str)
    scope.tool_calls[body] = scope.tool_calls.get(body, 0) + 1
    call_id = "node_" + hashlib.sha256(f"{run.run_id}|{body}|{scope.tool_calls[body]}".encode()).hexdigest()[:20]
    content = await run.gateway.call({"id": call_id, "name": name, "args": args}, agent=role, step_key=scope.key,
                                     node=scope.node, offered={name})
    return json.loads(content)


def actions_taken() -> list[dict[str, Any]]:
    """The calls of the current run that tried to change the world, from the audit (the model's word is not
    evidence): ``{"tool", "args", "status", "reason"}`` each, in order — what a decision step should cite. The
    arguments are those the call was made with (an approver's edit, when there was one)."""
    run = current_run()
    return [
        {"tool": c.tool, "args": c.effective_args, "status": c.status, "reason": c.reason}
        for c in list_calls(run.engine, run.run_id)
        if c.risk in ("write", "destructive")
    ]


def record_event(kind: str, /, **fields: Any) -> None:
    """Record an event of the current run (the run's event log, live views, the HTTP stream):
    ``record_event("conflict_resolved", service="search-api", winner="maintenance", why="…")``."""
    current_run().emit({"type": kind, **fields})
