"""Runs as plain Markdown text: progress lines for streamed chat replies, and the decision as the reply."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["decision_text", "progress_line"]


def _args(args: Any, limit: int = 160) -> str:
    text = json.dumps(args, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_line(event: dict[str, Any]) -> str | None:
    """One Markdown line (or block) for an event worth showing a reader, else None."""
    kind = event.get("type")
    if kind == "run_started":
        verb = "resuming run" if event.get("resumed") else "run"
        model = str(event.get("model")) + (" (offline stand-in, not an LLM)" if event.get("offline") else "")
        return f"_agentmesh {verb} `{event.get('run_id')}` · graph {event.get('graph')} · model {model}_\n\n"
    if kind == "plan":
        steps = (event.get("plan") or {}).get("steps") or []
        lines = [f"{i}. **{s.get('role')}** — {s.get('instruction')}" for i, s in enumerate(steps, 1)]
        return "**Plan**\n" + "\n".join(lines) + "\n\n"
    if kind == "step_started" and event.get("agent"):
        return f"- ▶ {event.get('node')} ({event.get('agent')})\n"
    if kind == "tool_call":
        return f"- {event.get('agent')} → `{event.get('tool')}` `{_args(event.get('args'))}`\n"
    if kind == "tool_result" and event.get("status") != "ok":
        return f"  - {event.get('status')}: {event.get('reason') or ''}\n"
    if kind == "approval_requested":
        return (f"- ⏸ approval needed for `{event.get('tool')}` `{_args(event.get('args'))}` "
                f"(call `{event.get('tool_call_id')}`)\n")
    if kind == "finding":
        finding = event.get("finding") or {}
        return f"- ✓ {event.get('agent')} {event.get('step_id')}: {str(finding.get('summary', ''))[:300]}\n"
    return None


def decision_text(result: dict[str, Any]) -> str:
    """The reply for a finished (or paused) run: the decision, its actions and rationale, or why there is none."""
    run_id = result["run_id"]
    status = result["status"]
    model = result.get("model") or {}
    footer = (f"_status {status} · agentmesh run {run_id} · model {model.get('name')}"
              + (" (offline stand-in, not an LLM)" if model.get("offline") else "") + "_")
    parts: list[str] = []
    decision = result.get("decision")
    if decision:
        parts += [f"**{decision['summary']}**", decision.get("rationale") or ""]
        actions = decision.get("actions") or []
        if actions:
            parts.append("**Actions taken**\n" + "\n".join(f"- `{a['tool']}` `{_args(a['args'])}`" for a in actions))
        else:
            parts.append("**Actions taken:** none")
        if decision.get("open_risks"):
            parts.append("**Open risks**\n" + "\n".join(f"- {r}" for r in decision["open_risks"]))
        parts.append(f"Outcome: {decision.get('outcome')} · confidence {float(decision.get('confidence') or 0):.2f}")
    pending = result.get("pending_approvals") or []
    if status == "waiting_approval" and pending:
        calls = "\n".join(f"- `{c['tool']}` `{_args(c['args'])}` (call `{c['id']}`, agent {c.get('agent')})"
                          for c in pending)
        parts.append(f"**Waiting for approval**\n{calls}\n\nReply `approve` or `reject` (optionally with a "
                     f"reason), or POST /v1/goals/{run_id}/approvals.")
    elif not decision:
        parts.append(f"The run ended **{status}** without a decision" + (f": {result['error']}" if result.get("error") else "."))
    parts.append(footer)
    return "\n\n".join(p for p in parts if p)
