"""Rich rendering of run events and results, shared by `agentmesh run`, `runs` and the chat."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

STATUS_STYLE = {"ok": "green", "refused": "yellow", "invalid": "yellow", "failed": "red", "rejected": "red",
                "pending_approval": "magenta", "dry_run": "cyan", "running": "blue"}
RUN_STYLE = {"done": "green", "failed": "red", "waiting_approval": "magenta", "budget_exceeded": "yellow",
             "cancelled": "yellow", "running": "blue"}


def _args(args: Any) -> str:
    text = json.dumps(args, default=str, ensure_ascii=False)
    return text if len(text) <= 140 else text[:137] + "…"


class EventPrinter:
    """Prints progress events as one line each."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        c = self.console
        if kind == "run_started":
            model = event["model"] + (" (offline: a deterministic stand-in, not an LLM)" if event.get("offline") else "")
            verb = "resuming" if event.get("resumed") else "run"
            c.print(f"[bold]agentmesh[/] {verb} [dim]{event['run_id']}[/] · graph [cyan]{event['graph']}[/] · model [cyan]{escape(model)}[/]")
        elif kind == "scope":
            c.print(f"[dim]scope: {escape(event['scope'].get('summary') or '')}[/]")
        elif kind == "plan":
            c.print("[bold]plan[/]")
            for step in event["plan"]["steps"]:
                deps = f" [dim](after {', '.join(step['depends_on'])})[/]" if step.get("depends_on") else ""
                c.print(f"  {step['id']} [cyan]{step['role']}[/]: {escape(step['instruction'])}{deps}")
        elif kind == "step_started" and event.get("agent"):
            c.print(f"[dim]▶ {event['node']} ({event['agent']})[/]")
        elif kind == "tool_call":
            c.print(f"  [cyan]{event['agent']}[/] → {event['tool']} {escape(_args(event.get('args')))}")
        elif kind == "tool_result" and event.get("status") != "ok":
            style = STATUS_STYLE.get(event["status"], "white")
            c.print(f"    [{style}]{event['status']}[/]: {escape(str(event.get('reason') or ''))}")
        elif kind == "approval_requested":
            why = f" — {event['reason']}" if event.get("reason") else ""
            c.print(f"  [magenta]approval needed[/] for {event['tool']} {escape(_args(event.get('args')))} "
                    f"[dim](call {event['tool_call_id']}){escape(why)}[/]")
        elif kind == "finding":
            c.print(f"  [green]✓[/] {event['agent']} {event['step_id']}: {escape(event['finding']['summary'][:200])}")


def print_result(console: Console, result: dict[str, Any]) -> None:
    status = result["status"]
    style = RUN_STYLE.get(status, "white")
    decision = result.get("decision")
    model = result["model"]["name"] + (" (offline)" if result["model"]["offline"] else "")
    if decision:
        lines = [f"[bold]{escape(decision['summary'])}[/]", "", escape(decision["rationale"])]
        actions = decision.get("actions") or []
        lines += ["", "[bold]Actions taken[/]" if actions else "[bold]Actions taken:[/] none"]
        lines += [f"  • {a['tool']} {escape(_args(a['args']))}" for a in actions]
        if decision.get("open_risks"):
            lines += ["", "[bold]Open risks[/]"] + [f"  • {escape(r)}" for r in decision["open_risks"]]
        lines += ["", f"outcome [cyan]{decision.get('outcome')}[/] · confidence {decision['confidence']:.2f}"]
        console.print(Panel("\n".join(lines), title=f"Decision · model {escape(model)}", border_style=style))
    usage = result.get("usage") or {}
    console.print(
        f"[{style}]{status}[/] · run {result['run_id']} · {usage.get('model_calls', 0)} model calls · "
        f"{usage.get('input_tokens', 0) + usage.get('output_tokens', 0)} tokens · ${usage.get('cost_usd', 0):.4f}"
    )
    if result.get("flow_run_url"):
        console.print(f"[dim]Prefect flow run:[/] {result['flow_run_url']}"
                      + (f" [dim]· trace {result['trace_id']}[/]" if result.get("trace_id") else ""), highlight=False,
                      soft_wrap=True)  # a link stays one line, to click or copy
    if result.get("error"):
        console.print(f"[red]{escape(result['error'])}[/]")
    for call in result.get("pending_approvals") or []:
        why = f" [dim]({escape(call['scope'])})[/]" if call.get("scope") else ""
        console.print(f"[magenta]waiting for approval[/]: {call['tool']} {escape(_args(call['args']))}{why} — "
                      f"`agentmesh approve {result['run_id']} {call['id']}` (or --reject)")


def runs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("run", "status", "graph", "deployment", "created", "goal"):
        table.add_column(col, no_wrap=col == "run")
    for r in rows:
        table.add_row(r["run_id"], f"[{RUN_STYLE.get(r['status'], 'white')}]{r['status']}[/]", r["graph"],
                      r.get("deployment") or "", (r["created"] or "")[:19], escape(r["goal"][:60]))
    return table


def audit_table(calls: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("call", "agent", "tool", "args", "status", "reason", "approver"):
        table.add_column(col)
    for c in calls:
        reason = c.get("reason") or (c.get("scope") or "")
        approver = f"{c['approval']} by {c['approver']}" if c.get("approver") else (c.get("approval") or "")
        table.add_row(c["tool_call_id"][-10:], c.get("agent") or "", c["tool"], escape(_args(c["args"]))[:60],
                      f"[{STATUS_STYLE.get(c['status'], 'white')}]{c['status']}[/]", escape(reason), escape(approver))
    return table
