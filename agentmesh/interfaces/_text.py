"""Runs as plain Markdown text: progress lines for streamed chat replies, the decision as the reply, and the
decision's text as the model writes it (``LiveDecision``)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["SEPARATOR", "LiveDecision", "decision_text", "progress_line"]

SEPARATOR = "\n---\n\n"
"""Between a streamed reply's progress lines and its decision."""
DECISION_TOOL = "submit_decision"


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


class LiveDecision:
    """The decision's text while the model writes it: fed the run's ``token`` events, it returns what to send
    next — the start of :func:`decision_text` (the summary in bold, then the rationale), from the pieces of the
    model's ``submit_decision`` arguments. ``rest`` gives what completes the validated decision's text.

    Only the first answer streams: if the model is asked again (its answer did not validate) or a cut stream starts
    over, nothing more streams live and ``rest`` sends the validated decision whole, after what was sent.
    """

    def __init__(self) -> None:
        self.call: str | None = None
        self.args = ""
        self.sent = ""
        self.stopped = False

    def feed(self, event: dict[str, Any]) -> str:
        if self.stopped or event.get("type") != "token":
            return ""
        call = event.get("call")
        if event.get("restart"):
            if call == self.call:  # this answer's stream was cut off and starts over
                self.stopped, self.call, self.args = bool(self.sent), None, ""
            return ""
        if event.get("tool") != DECISION_TOOL:
            return ""
        if self.call not in (None, call):  # asked again: the validated decision is sent whole at the end
            self.stopped = True
            return ""
        self.call = call
        self.args += str(event.get("args") or "")
        text = _partial_decision(self.args)
        if text is None or not text.startswith(self.sent):
            self.stopped = text is not None
            return ""
        delta, self.sent = text[len(self.sent):], text
        return (SEPARATOR if delta and len(self.sent) == len(delta) else "") + delta

    def rest(self, final: str) -> str:
        """What to send after the live text so the reply ends with ``final`` (the run's ``decision_text``)."""
        if not self.sent:
            return SEPARATOR + final
        if final.startswith(self.sent):
            return final[len(self.sent):]
        return "\n\n" + final


def _partial_decision(args: str) -> str | None:
    """The decision text so far from the partial JSON arguments of ``submit_decision`` (None: unreadable yet)."""
    from langchain_core.utils.json import parse_partial_json

    try:
        parsed = parse_partial_json(args)
    except Exception:
        return None
    if not isinstance(parsed, dict):
        return None
    summary = parsed.get("summary")
    if not isinstance(summary, str):
        return ""
    keys = list(parsed)
    if keys[-1] == "summary":  # still being written
        return "**" + summary.lstrip()
    text = f"**{summary.strip()}**"
    rationale = parsed.get("rationale")
    if isinstance(rationale, str):
        text += "\n\n" + (rationale.lstrip() if keys[-1] == "rationale" else rationale.strip())
    return text
