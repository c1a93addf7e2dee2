"""`agentmesh deploy`: scheduled goals as Prefect deployments, and `agentmesh prefect` for the local server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from agentmesh.core.exceptions import UserError

out = Console()
ACTIONS = ("list", "run", "pause", "resume")

prefect_app = typer.Typer(help="The local Prefect server agentmesh runs in the background.", no_args_is_help=True)


def deploy(
    target: Annotated[list[str] | None, typer.Argument(
        help="NAME to create a deployment; or list | run NAME | pause NAME | resume NAME.")] = None,
    goal: Annotated[str | None, typer.Option("--goal", help="The goal each scheduled run pursues.")] = None,
    graph: Annotated[str, typer.Option("--graph", "-g", help="The graph to run.")] = "mesh",
    cron: Annotated[str | None, typer.Option("--cron", help="A cron schedule, e.g. '*/15 * * * *'.")] = None,
    interval: Annotated[float | None, typer.Option("--interval", help="Seconds between runs. Neither this nor --cron: run on demand only (`agentmesh deploy run NAME`).")] = None,
    work_pool: Annotated[str | None, typer.Option("--work-pool", help="A Prefect work pool whose workers run it.")] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the deployments (all, or the NAMEs) from this process.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="With --serve: goals run at once.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Schedule a goal as a Prefect deployment; list, run, pause or resume deployments; or serve them."""
    args = list(target or [])
    if not args and not serve:
        raise UserError("name a deployment (`agentmesh deploy NAME --goal ... --interval 3600`) or an action: "
                        + ", ".join(ACTIONS))
    action, rest = (args[0], args[1:]) if args else ("", [])
    if action in ("run", "pause", "resume") and len(rest) != 1 and not serve:
        raise UserError(f"`agentmesh deploy {action} NAME` takes one deployment name")
    if action not in ACTIONS and len(args) != 1 and not serve:
        raise UserError("`agentmesh deploy NAME --goal TEXT [--cron EXPR | --interval SECONDS]` takes one NAME")
    if action not in ACTIONS and goal is None and not serve:
        raise UserError("--goal is required to create a deployment")
    import agentmesh.deployments as d  # each call validates its input, then reaches the Prefect server

    if serve:
        d.serve(args or None, limit=limit)
        return
    if action == "list":
        rows = asyncio.run(d.list_deployments())
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        for r in [] if as_json else rows:
            when = f"cron {r['cron']}" if r["cron"] else f"every {r['interval']:g} s" if r["interval"] else "manual"
            state = "paused" if r["paused"] else "active"
            out.print(f"[bold]{r['name']}[/] {state} · {when} · pool {r['work_pool'] or '(served)'} · "
                      f"{(r['parameters'].get('goal') or 'evolve ' + ' '.join(r['parameters'].get('suite') or []))[:80]}")
        return
    if action in ("run", "pause", "resume"):
        if action == "run":
            from agentmesh.persistence.runs import flow_run_url
            from agentmesh.runtime.prefect import api_url

            flow_run_id = asyncio.run(d.run_now(rest[0]))
            link = flow_run_url(api_url(), str(flow_run_id))
            out.print(f"started flow run {flow_run_id}" + (f" ({link})" if link else "")
                      + "; `agentmesh runs list` shows it once a worker picks it up", highlight=False, soft_wrap=True)
        else:
            asyncio.run(d.set_paused(rest[0], action == "pause"))
            out.print(f"{rest[0]} {action}d")
        return
    assert goal is not None
    deployment_id = asyncio.run(d.create_deployment(action, goal=goal, graph=graph, cron=cron, interval=interval,
                                                    work_pool=work_pool))
    if as_json:
        sys.stdout.write(json.dumps({"id": deployment_id, "name": action}) + "\n")
    else:
        runner = f"workers of pool {work_pool}" if work_pool else "`agentmesh deploy --serve`"
        when = "" if cron or interval else f" when started (`agentmesh deploy run {action}`)"
        out.print(f"deployment [bold]{action}[/] created ({deployment_id}); {runner} will run it{when}",
                  highlight=False)


def _prefect_home() -> Path:
    from agentmesh.core.settings import get_settings

    return Path(os.environ.get("PREFECT_HOME") or get_settings().resolved_home / "prefect")


@prefect_app.command("status")
def prefect_status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
    """Where runs are recorded (PREFECT_API_URL, the local server, or Prefect's embedded mode) and the Prefect
    UI's address (ui_url)."""
    from agentmesh.persistence.runs import prefect_ui_url
    from agentmesh.runtime.prefect import _alive, _healthy, local_server_state

    api: str | None
    status: dict[str, Any]
    if os.environ.get("PREFECT_API_URL"):
        api = os.environ["PREFECT_API_URL"]
        status = {"kind": "external", "running": None, "api_url": api, "ui_url": prefect_ui_url(api), "pid": None}
    else:
        state = local_server_state(_prefect_home())
        running = bool(state and _alive(state.get("pid")) and _healthy(state["url"]))
        api = state["url"] if state and running else None
        status = {"kind": "local", "running": running, "api_url": api, "ui_url": prefect_ui_url(api),
                  "pid": state["pid"] if state and running else None}
    if as_json:
        sys.stdout.write(json.dumps(status, indent=2) + "\n")
    elif status["kind"] == "external":
        out.print(f"PREFECT_API_URL = {api}\nPrefect UI: {status['ui_url']}", highlight=False)
    elif status["running"]:
        out.print(f"local Prefect server running at {api} (pid {status['pid']})\nPrefect UI: {status['ui_url']}",
                  highlight=False)
    else:
        out.print("no local Prefect server running; the next run starts one")


@prefect_app.command("stop")
def prefect_stop(every: Annotated[bool, typer.Option(
        "--all", help="Stop every local Prefect server agentmesh started for you, whatever its home.")] = False,
) -> None:
    """Stop the local Prefect server (runs stay recorded; the next run starts it again)."""
    from agentmesh.runtime.prefect import stop_all_local_servers, stop_local_server

    if every:
        stopped = stop_all_local_servers()
        out.print(f"stopped {len(stopped)} local Prefect server(s)"
                  + "".join(f"\n  pid {s['pid']} · {s['home'] or 'home unknown'}" for s in stopped), highlight=False)
        return
    out.print("stopped" if stop_local_server(_prefect_home()) else "no local Prefect server was running")


@prefect_app.command("automations")
def prefect_automations() -> None:
    """Create or update the automations that finish deployed goals whose worker died: no heartbeat for
    dead_worker_s → Crashed → back on the work pool, where a live worker resumes the goal from its checkpoint.
    `agentmesh deploy NAME --work-pool POOL` sets them up too; run this after `prefect deploy`."""
    import agentmesh.deployments as d

    names = asyncio.run(d.ensure_recovery())
    out.print(f"automations on {os.environ.get('PREFECT_API_URL', 'the Prefect server')} (deployed goals send a "
              f"heartbeat every {d.HEARTBEAT_S} s):" + "".join(f"\n  {name}" for name in names),
              highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": True})(deploy)
    app.add_typer(prefect_app, name="prefect")
