"""Rich rendering of run events and results, shared by `agentmesh run`, `runs` and the chat."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {"ok": "green", "refused": "yellow", "invalid": "yellow", "failed": "red", "rejected": "red",
                "pending_approval": "magenta", "dry_run": "cyan", "running": "blue"}
RUN_STYLE = {"done": "green", "failed": "red", "waiting_approval": "magenta", "budget_exceeded": "yellow",
             "cancelled": "yellow", "running": "blue"}


def _args(args: Any) -> str:
    text = json.dumps(args, default=str, ensure_ascii=False)
    return text if len(text) <= 140 else text[:137] + "…"


def action_line(tool: str, args: Any, width: int = 76) -> str:
    """A tool call for people, on one line: ``scale_service service=checkout-api replicas=5``."""
    def value(v: Any) -> str:
        if isinstance(v, str):
            return v if v and not any(c.isspace() for c in v) else json.dumps(v, ensure_ascii=False)
        return json.dumps(v, default=str, ensure_ascii=False, separators=(",", ":"))

    text = " ".join([tool, *(f"{k}={value(v)}" for k, v in (args or {}).items())]) if isinstance(args, dict) \
        else f"{tool} {value(args)}"
    return text if len(text) <= width else text[: width - 1] + "…"


class EventPrinter:
    """Prints progress events as one line each; on a terminal, the model's tokens as they arrive (a live region
    under the lines: one line per model call still being written, gone once the call has ended)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Live | None = None
        self._writing: dict[str, tuple[str, str, str]] = {}
        """Model call -> (agent, node, the text so far)."""

    @property
    def wants_tokens(self) -> bool:
        """Whether to ask the run for tokens (``stream_tokens``): only a terminal shows them."""
        return self.console.is_terminal

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "token":
            self._token(event)
            return
        if self._writing:  # any other event of the writer's agent or node means its reply is complete
            agent, node = event.get("agent"), event.get("node")
            self._writing = {k: v for k, v in self._writing.items()
                             if (agent or node) and agent != v[0] and node != v[1]}
            self._show()
        if kind in ("run_finished", "approval_requested") and self._live is not None:
            self._live.stop()
            self._live = None
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
        elif kind == "tool_result" and event.get("edited"):
            edited = event["edited"]
            c.print(f"    [magenta]edited by {escape(str(edited.get('by')))}[/] to {escape(_args(edited.get('args')))}: "
                    f"[{STATUS_STYLE.get(event['status'], 'white')}]{event['status']}[/]"
                    + (f" {escape(str(event['reason']))}" if event.get("reason") else ""))
        elif kind == "tool_result" and event.get("status") != "ok":
            style = STATUS_STYLE.get(event["status"], "white")
            c.print(f"    [{style}]{event['status']}[/]: {escape(str(event.get('reason') or ''))}")
        elif kind == "approval_requested":
            why = f" — {event['reason']}" if event.get("reason") else ""
            c.print(f"  [magenta]approval needed[/] for {event['tool']} {escape(_args(event.get('args')))} "
                    f"[dim](call {event['tool_call_id']}){escape(why)}[/]")
        elif kind == "remote_step_lost":
            c.print(f"  [yellow]the {event['agent']}'s step was lost with its worker {escape(str(event['worker']))}[/]"
                    " [dim](sent again)[/]")
        elif kind == "finding":
            c.print(f"  [green]✓[/] {event['agent']} {event['step_id']}: {escape(_cut(event['finding']['summary'], 200))}")

    def _token(self, event: dict[str, Any]) -> None:
        if not self.console.is_terminal:
            return
        call = str(event.get("call"))
        agent, node = str(event.get("agent") or "?"), str(event.get("node") or "")
        text = "" if event.get("restart") else self._writing.get(call, ("", "", ""))[2]
        if event.get("text"):
            text += str(event["text"])
        elif event.get("args"):
            text = (text or f"{event.get('tool')} ") + str(event["args"])
        self._writing[call] = (agent, node, text[-2000:])  # the tail is what shows
        if self._live is None:
            self._live = Live(console=self.console, transient=True, refresh_per_second=12)
            self._live.start()
        self._show()

    def _show(self) -> None:
        if self._live is None:
            return
        width = max(20, self.console.width - 4)
        lines = []
        for agent, node, text in list(self._writing.values())[-4:]:
            label = f"✎ {agent} ({node}): " if node and node != agent else f"✎ {agent}: "
            tail = " ".join(text.split())[-(width - len(label)):]
            lines.append(Text.assemble((label, "dim cyan"), (tail, "dim")))
        self._live.update(Group(*lines))


def print_result(console: Console, result: dict[str, Any]) -> None:
    status = result["status"]
    style = RUN_STYLE.get(status, "white")
    decision = result.get("decision")
    model = result["model"]["name"] + (" (offline)" if result["model"]["offline"] else "")
    if decision:
        # The summary, each action on one line, the open risks once, the outcome (the rationale: `runs show`).
        width = max(40, min(console.width, 120) - 8)
        lines = [f"[bold]{escape(decision['summary'])}[/]"]
        actions = decision.get("actions") or []
        lines += ["", "[bold]Actions taken[/]" if actions else "[bold]Actions taken:[/] none"]
        lines += [f"  • {escape(action_line(a['tool'], a.get('args'), width - 4))}" for a in actions]
        risks = list(dict.fromkeys(decision.get("open_risks") or []))
        if risks:
            lines += ["", "[bold]Open risks[/]"] + [f"  • {escape(r)}" for r in risks]
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


def short_ids(ids: list[str], least: int = 8) -> int:
    """The shortest prefix length (at least ``least``) that keeps every id apart: `runs show` takes a prefix."""
    for n in range(least, max((len(i) for i in ids), default=least) + 1):
        if len({i[:n] for i in ids}) == len(set(ids)):
            return n
    return max((len(i) for i in ids), default=least)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _fitted(header: list[str], rows: list[list[str]], width: int, last_min: int = 12, cut: bool = True,
            gap: int = 2) -> Table:
    """A borderless table whose columns but the last are as wide as their widest cell and never cut; the last
    (free text) gets what is left of ``width``, cut to one line (or wrapped when not ``cut``); ``gap`` spaces
    between columns."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header[:-1])]
    room = max(width - sum(widths) - gap * (len(header) - 1), last_min)
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, gap, 0, 0))
    for h, w in zip(header[:-1], widths, strict=True):
        table.add_column(h, no_wrap=True, min_width=w)
    table.add_column(header[-1])
    for r in rows:
        table.add_row(*[escape(c) for c in r[:-1]], escape(_cut(r[-1], room) if cut else r[-1]))
    return table


def runs_table(rows: list[dict[str, Any]], width: int = 80) -> Table:
    """Fits ``width`` columns: run ids as unique prefixes (`runs show` takes them; --json has them whole), statuses,
    graphs and dates whole; the goal cut to what is left."""
    n = short_ids([r["run_id"] for r in rows])
    deployments = any(r.get("deployment") for r in rows)
    header = ["run", "status", "graph", *(["deployment"] if deployments else []), "created", "goal"]
    cells = [[r["run_id"][:n], r["status"], r["graph"], *([r.get("deployment") or ""] if deployments else []),
              (r["created"] or "")[5:16].replace("T", " "), r["goal"]] for r in rows]
    return _fitted(header, cells, width)


def steps_table(steps: list[dict[str, Any]], width: int = 80) -> Table:
    """A run's steps, fitting ``width`` columns: node, agent, status and tool calls whole; then where the step ran
    (``host:pid``: the goal's process, or a remote role's task worker), the Prefect task run (and trace span) ids,
    wrapped between ids, never inside one."""
    cells = [[s["node"], s.get("agent") or "-", s["status"], str(len(s.get("tool_calls") or [])),
              " · ".join(x for x in (f"on {s['worker']}" if s.get("worker") else "", s.get("prefect_task_run_id") or "",
                                     f"span {s['span_id']}" if s.get("span_id") else "") if x)] for s in steps]
    header = ["step", "agent", "status", "calls", "worker · Prefect task run"]
    fixed = sum(max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(header[:-1]))
    gap = 2 if fixed + 2 * (len(header) - 1) + 36 <= width else 1  # room for a whole id (36 characters)
    return _fitted(header, cells, width, cut=False, gap=gap)


def audit_table(calls: list[dict[str, Any]], width: int = 80) -> Table:
    """Fits ``width`` columns: call ids, agents, tools and statuses whole; then each call's arguments, reason and
    approver, wrapped."""
    cells = []
    for c in calls:
        reason = c.get("reason") or (c.get("scope") or "")
        approver = f"{c['approval']} by {c['approver']}" if c.get("approver") else (c.get("approval") or "")
        args = action_line("", c["args"], 500).strip()
        if c.get("edited_args") is not None:  # the audit record: the model's arguments, then the approver's edit
            args = f"{args} → {action_line('', c['edited_args'], 500).strip()}"
            approver += " (edited)"
        cells.append([c["tool_call_id"][-10:], c.get("agent") or "", c["tool"], c["status"],
                      " · ".join(x for x in (args, reason, approver) if x)])
    return _fitted(["call", "agent", "tool", "status", "details"], cells, width, cut=False)
