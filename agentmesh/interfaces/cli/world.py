"""`agentmesh world init|show|reset` and `agentmesh policy show`: the operations world and the policy."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agentmesh.core.exceptions import UserError

__all__ = ["policy_app", "world_app"]

world_app = typer.Typer(help="The operations world the built-in tools act on.", no_args_is_help=True)
policy_app = typer.Typer(help="The policy in force: limits, protections, approvals and roles.", no_args_is_help=True)



@policy_app.callback()
def _policy() -> None:
    """The policy in force: limits, protections, approvals and roles."""


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


@contextmanager
def _user_errors() -> Iterator[None]:
    """A UserError is one line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _world() -> Any:
    from agentmesh.core.settings import get_settings
    from agentmesh.plugins.operations.world import World

    return World.from_settings(get_settings())


@world_app.command("init")
def world_init(
    sample: Annotated[str, typer.Option("--sample", help="A bundled sample (default) or a folder with world.json.")] = "default",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing world.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Load a sample world into the agentmesh database and copy the default policy to AGENTMESH_HOME."""
    with _user_errors():
        from agentmesh.core.bundled import DEFAULT_POLICY_FILE
        from agentmesh.core.settings import get_settings

        settings = get_settings()
        world = _world()
        summary = world.init(sample, force=force)
        mine = settings.resolved_home / "policy.toml"
        if not mine.exists() and not settings.policy_file:
            mine.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(DEFAULT_POLICY_FILE, mine)
            summary["policy_file"] = str(mine)
        if as_json:
            _emit(summary)
            return
        typer.echo(
            f"world initialised from sample {summary['sample']!r} in {summary['home']}: {summary['services']} services, "
            f"{summary['datasets']} datasets, {summary['tickets']} tickets, {summary['customers']} customers, "
            f"{summary['orders']} orders"
        )
        if "policy_file" in summary:
            typer.echo(f"policy copied to {summary['policy_file']} (edit it there)")


@world_app.command("show")
def world_show(as_json: JsonFlag = False) -> None:
    """Show services, datasets, tickets and notifications."""
    with _user_errors():
        world = _world()
        if world.sample_name() is None:
            raise UserError("the world is empty: run `agentmesh world init`")
        snap = world.snapshot()
        if as_json:
            _emit(snap)
            return
        _print_snapshot(snap)


@world_app.command("reset")
def world_reset() -> None:
    """Restore the world to its sample's initial state (every change, refund and notification undone)."""
    with _user_errors():
        world = _world()
        world.reset()
        typer.echo(f"world reset to sample {world.sample_name()!r}")


@policy_app.command("show")
def policy_show(as_json: JsonFlag = False) -> None:
    """Show the policy in force and the file it comes from."""
    with _user_errors():
        from agentmesh.core.settings import get_settings
        from agentmesh.runtime.components import components

        data = components(get_settings()).policy.summary()
        if as_json:
            _emit(data)
            return
        console = Console()
        console.print(f"policy: {data['source']}")
        console.print(f"approval required: {', '.join(data['approval_required']) or 'none'}")
        scope = data["scope"]
        per_tool = ", ".join(f"{tool} {rule}" for tool, rule in scope["tools"].items())
        console.print(f"outside the goal's scope: {scope['outside']}" + (f" ({per_tool})" if per_tool else ""))
        console.print(f"four eyes: {', '.join(data['four_eyes']) or 'none'}")
        world = data.get("world")
        if world is not None:  # the operations world's table
            console.print(
                f"world: hourly cost ceiling ${world['hourly_cost_ceiling_usd']:.2f} · refund cap per ticket "
                f"${world['refund_cap_usd']:.2f} · daily refund budget ${world['daily_refund_budget_usd']:.2f}"
            )
            console.print(f"protected datasets: {', '.join(world['protected_datasets']) or 'none'}")
            limits = Table("service", "min", "max", "max change/call", title="service limits")
            for name, lim in [*world["services"].items(), ("(default)", world["default_service"])]:
                limits.add_row(name, str(lim["min_replicas"]), str(lim["max_replicas"]), str(lim["max_change_per_call"]))
            console.print(limits)
        roles = Table("role", "tools", title="roles")
        for role, names in data["roles"].items():
            roles.add_row(role, ", ".join(names) or "(none)")
        console.print(roles)


def _table(title: str, rows: list[dict[str, Any]], columns: list[tuple[str, str, Callable[[Any], str]]]) -> Table:
    """Fits 80 columns: no borders, every column as wide as its widest cell, nothing cut or wrapped."""
    cells = [[fmt(row.get(key)) for _, key, fmt in columns] for row in rows]
    table = Table(title=title, box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold", title_justify="left")
    for i, (header, _, _) in enumerate(columns):
        table.add_column(header, no_wrap=True, min_width=max([len(header)] + [len(c[i]) for c in cells]))
    for c in cells:
        table.add_row(*c)
    return table


def _print_snapshot(snap: dict[str, Any]) -> None:
    console = Console()
    console.print(f"world from sample {snap['sample']!r} in {snap['home']}")
    for s in snap["services"]:
        s["range"] = f"{s['min_replicas']}..{s['max_replicas']}"
    console.print(_table(
        f"services (${snap['total_hourly_cost_usd']:.2f}/h of ${snap['hourly_cost_ceiling_usd']:.2f}/h ceiling)",
        snap["services"],
        [("service", "name", str), ("repl", "replicas", str), ("range", "range", str),
         ("cpu%", "cpu_pct", str), ("p95ms", "p95_ms", str), ("err", "error_rate", lambda v: f"{v:.1%}"),
         ("$/h", "hourly_cost", lambda v: f"{v:.2f}"), ("status", "status", str)],
    ))
    console.print(_table("datasets", snap["datasets"], [
        ("dataset", "name", str), ("format", "format", str), ("versions", "versions", str), ("rows", "rows", str),
        ("quality", "quality_score", str), ("protected", "protected", lambda v: "yes" if v else ""),
    ]))
    by_status: dict[str, int] = {}
    for t in snap["tickets"]:
        by_status[t["status"]] = by_status.get(t["status"], 0) + 1
    console.print(f"tickets: {len(snap['tickets'])} ({', '.join(f'{n} {s}' for s, n in sorted(by_status.items()))}); "
                  f"refunded ${snap['refunds_total_usd']:.2f}; {snap['customers']} customers, {snap['orders']} orders")
    for n in snap["notifications"][:5]:
        console.print(f"notice [{n['severity']}] {n['message']}")


def register(app: typer.Typer) -> None:
    app.add_typer(world_app, name="world")
    app.add_typer(policy_app, name="policy")
