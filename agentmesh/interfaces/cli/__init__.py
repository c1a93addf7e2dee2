"""The `agentmesh` command.

Exit codes: 0 done, 1 the run failed or was refused, 2 bad usage or input (with a one-line reason).
Progress goes to stderr; `--json` prints one JSON document on stdout.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer import TyperException

from agentmesh.core.exceptions import AgentmeshError, PolicyViolation, UserError
from agentmesh.interfaces.cli._render import EventPrinter, audit_table, print_result, runs_table, steps_table

app = typer.Typer(
    name="agentmesh",
    help="A team of LLM agents that plans, acts through audited tools and explains its decision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
runs_app = typer.Typer(help="List, show, audit and resume runs.", no_args_is_help=True)
graphs_app = typer.Typer(help="The registered graphs.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")
app.add_typer(graphs_app, name="graphs")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error is one line, however narrow the terminal

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ForceFlag = Annotated[bool, typer.Option("--force", help="Take the run over even if a live process owns it; that "
                                        "process's later writes to the run are rejected.")]
Approvals = Annotated[
    str | None,
    typer.Option("--approvals", help="wait (default): pause for a person; auto: approve what policy allows; deny."),
]


def _show_version(value: bool) -> None:
    if value:
        from agentmesh.core import __version__

        typer.echo(f"agentmesh {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """A team of LLM agents that plans, acts through audited tools and explains its decision."""


def _settings(**overrides: Any) -> Any:
    from agentmesh.core.settings import get_settings

    return get_settings(**overrides)


def _check_approvals(value: str | None) -> None:
    if value is not None and value not in ("wait", "auto", "deny"):
        raise UserError(f"--approvals must be wait, auto or deny, not {value!r}")


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _finish_run(result: dict[str, Any], as_json: bool, settings: Any = None) -> None:
    if as_json:
        _emit_json(result)
    else:
        print_result(out, result)
        _how_to_see(result["run_id"], settings or _settings())
    if result["status"] in ("failed", "budget_exceeded", "cancelled"):
        raise typer.Exit(1)


@app.command()
def run(
    goal: Annotated[str, typer.Argument(help="What you want done, in your own words.")],
    graph: Annotated[str | None, typer.Option("--graph", "-g", help="The graph to run (see `agentmesh graphs`).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="offline, or an OpenAI-compatible model name.")] = None,
    approvals: Approvals = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate every call but execute no change.")] = False,
    by: Annotated[str | None, typer.Option("--as", help="Who starts the run (default: your user name); under "
                                           "four_eyes they cannot approve its calls.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a goal end to end and print the decision."""
    from agentmesh.runtime.graphs import get_graph

    if not goal.strip():
        raise UserError("the goal is empty: say what you want done, e.g. \"keep checkout-api p95 under 300 ms\"")
    _check_approvals(approvals)
    settings = _settings(model=model, dry_run=dry_run or None)
    get_graph(graph or settings.graph, settings.graphs_paths)
    # Input is valid: the first progress line, before LangGraph, LangChain and Prefect load (a second or more).
    err.print("[dim]agentmesh: starting the run…[/]", highlight=False)
    from agentmesh.runtime.run import arun_goal

    quiet = Console(stderr=True, quiet=False)
    printer = EventPrinter(quiet)
    ids: dict[str, str] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("run_id"):
            ids.setdefault("run_id", event["run_id"])
        printer(event)

    result = _until_done(arun_goal(goal, graph=graph, settings=settings, approvals=approvals, on_event=on_event,
                                   started_by=by or getpass.getuser(), stream_tokens=printer.wants_tokens),
                         ids, settings)
    _finish_run(result, as_json, settings)


def _until_done(coro: Coroutine[Any, Any, dict[str, Any]], ids: dict[str, str], settings: Any = None) -> dict[str, Any]:
    """Run a goal (or its resumption) to its end; Ctrl-C cancels it — the runtime records it ``cancelled`` — with
    one line saying so, and exit 130."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        run_id = ids.get("run_id")
        if run_id is None:
            err.print("cancelled before the run started")
        else:
            err.print(f"[yellow]cancelled[/] run {run_id}, recorded as cancelled; see it: "
                      f"{_home_prefix(settings or _settings())}agentmesh runs show {run_id}", highlight=False)
        raise typer.Exit(130) from None


def _home_prefix(settings: Any) -> str:
    """``AGENTMESH_HOME=… `` when the home is not this folder's default, for a command line to copy."""
    import shlex
    from pathlib import Path

    home = settings.resolved_home
    return "" if home == Path(".agentmesh").resolve() else f"AGENTMESH_HOME={shlex.quote(str(home))} "


def _how_to_see(run_id: str, settings: Any) -> None:
    """After a run: the commands that show it again, naming the home when it is not this folder's default."""
    prefix = _home_prefix(settings)
    err.print(f"[dim]see it again:[/]    {prefix}agentmesh runs show {run_id}\n"
              f"[dim]every tool call:[/] {prefix}agentmesh runs audit {run_id}", highlight=False)


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="The run waiting for approval.")],
    call_id: Annotated[str | None, typer.Argument(help="One pending call; default: all of the run's pending calls.")] = None,
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded in the audit.")] = None,
    by: Annotated[str | None, typer.Option("--as", help="Who is approving (default: your user name).")] = None,
    args: Annotated[str | None, typer.Option("--args", help="Approve with these arguments changed, as a JSON object "
                                             "(e.g. '{\"replicas\": 5}'); the others stay as the agent asked.")] = None,
    approvals: Approvals = None,
    force: ForceFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Approve (or --reject) a run's pending call and resume the run; --args approves it with edited arguments."""
    from agentmesh.runtime.approvals import aapprove

    _check_approvals(approvals)
    changes = None
    if args is not None:
        try:
            changes = json.loads(args)
        except ValueError as exc:
            raise UserError(f"--args is not JSON ({exc}): give an object, e.g. '{{\"replicas\": 5}}'") from None
    result = _until_done(aapprove(run_id, call_id, approved=not reject, approver=by or getpass.getuser(),
                                  reason=reason, args=changes, settings=_settings(), approvals=approvals,
                                  on_event=EventPrinter(err), force=force), {"run_id": run_id})
    _finish_run(result, as_json)


@runs_app.command("list")
def runs_list(
    status: Annotated[str | None, typer.Option("--status", help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 30,
    as_json: JsonFlag = False,
) -> None:
    """The latest runs, newest first."""
    from agentmesh.persistence.database import get_engine
    from agentmesh.persistence.runs import runs_listing

    rows = runs_listing(get_engine(_settings().resolved_database_url), limit=limit, status=status)
    if as_json:
        _emit_json(rows)
    elif rows:
        out.print(runs_table(rows, out.width))
    else:
        out.print("no runs yet: `agentmesh run \"your goal\"`")


@runs_app.command("show")
def runs_show(run_id: Annotated[str, typer.Argument(help="A run id (a unique prefix will do).")],
              as_json: JsonFlag = False) -> None:
    """One run: its decision, steps and usage."""
    from agentmesh.persistence.database import get_engine
    from agentmesh.persistence.runs import run_result

    result = run_result(get_engine(_settings().resolved_database_url), run_id)
    if as_json:
        _emit_json(result)
        return
    out.print(f"[bold]{escape(result['goal'])}[/]  [dim]graph {result['graph']}"
              + (f" · started by {escape(result['started_by'])}" if result.get("started_by") else "") + "[/]")
    scope = (result.get("scope") or {}).get("summary")
    if scope:
        out.print(f"  scope: {escape(scope)}")
    if result["steps"]:
        out.print(steps_table(result["steps"], out.width))
    if (result.get("decision") or {}).get("rationale"):
        out.print(f"[bold]why[/] {escape(result['decision']['rationale'])}")
    print_result(out, result)


@runs_app.command("audit")
def runs_audit(run_id: Annotated[str, typer.Argument(help="A run id (a unique prefix will do).")],
               as_json: JsonFlag = False) -> None:
    """Every attempted tool call of a run: arguments, status, reason, result, approver."""
    from agentmesh.persistence.audit import list_calls
    from agentmesh.persistence.database import get_engine
    from agentmesh.persistence.runs import get_run

    engine = get_engine(_settings().resolved_database_url)
    calls = [c.model_dump(mode="json") for c in list_calls(engine, get_run(engine, run_id)["run_id"])]
    if as_json:
        _emit_json(calls)
    else:
        out.print(audit_table(calls, out.width) if calls else "no tool calls")


@runs_app.command("resume")
def runs_resume(run_id: Annotated[str, typer.Argument(help="The run to continue from its last checkpoint.")],
                approvals: Approvals = None, force: ForceFlag = False, as_json: JsonFlag = False) -> None:
    """Continue a run after a crash, a pause or a failure; finished tool calls are not repeated."""
    from agentmesh.runtime.run import aresume_run

    _check_approvals(approvals)
    result = _until_done(aresume_run(run_id, settings=_settings(), approvals=approvals, on_event=EventPrinter(err),
                                     force=force), {"run_id": run_id})
    _finish_run(result, as_json)


@app.command()
def tools(as_json: JsonFlag = False) -> None:
    """The tools agents can call, with risk, roles and argument schema."""
    from agentmesh.runtime.components import components

    parts = components(_settings())
    rows = [t.describe(parts.policy.allowed_roles(t)) for t in sorted(parts.registry, key=lambda t: t.name)]
    if as_json:
        _emit_json(rows)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("tool", "risk", "roles", "server", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["risk"], ", ".join(r["roles"]), r["server"] or "", r["description"].split("\n")[0])
    out.print(table)


@app.command()
def agents(as_json: JsonFlag = False) -> None:
    """The agent roles: prompt version and the tools each is offered."""
    from agentmesh.agents.agent import Agent
    from agentmesh.prompts.templates import list_roles
    from agentmesh.runtime.components import components

    settings = _settings()
    parts = components(settings)
    rows = []
    for role in list_roles(settings.prompts_path):
        template = Agent(role=role).template()
        offered = [t.name for t in parts.registry if role in parts.policy.allowed_roles(t)
                   and (template.tools is None or t.name in template.tools)]
        rows.append({"role": role, "version": template.version, "sha": template.sha,
                     "description": template.description, "tools": sorted(offered), "prompt": str(template.path)})
    if as_json:
        _emit_json(rows)
        return
    for r in rows:
        out.print(f"[bold cyan]{r['role']}[/] v{r['version']} — {r['description']}\n  tools: {', '.join(r['tools']) or 'none'}")


@graphs_app.callback()
def graphs(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The registered graphs, with a description and an example goal each."""
    if ctx.invoked_subcommand:
        return
    from agentmesh.runtime.graphs import list_graphs

    rows = [{"name": g.name, "description": g.description, "example_goal": g.example_goal, "path": str(g.path)}
            for g in list_graphs(_settings().graphs_paths).values()]
    if as_json:
        _emit_json(rows)
        return
    import shlex

    for r in rows:
        out.print(f"[bold cyan]{escape(r['name'])}[/] — {escape(r['description'])}")
        # One line whatever the width (the terminal wraps it), quoted for the shell: it can be copied and run.
        example = (f"e.g. agentmesh run --graph {shlex.quote(r['name'])} {shlex.quote(r['example_goal'])}"
                   if r["example_goal"] else f"(no example goal: set EXAMPLE_GOAL in {r['path']})")
        out.print(f"  [dim]{escape(example)}[/]", soft_wrap=True, highlight=False)


@graphs_app.command("show")
def graphs_show(name: Annotated[str, typer.Argument(help="A graph name.")]) -> None:
    """A graph's structure, as Mermaid."""
    from agentmesh.runtime.graphs import get_graph

    sys.stdout.write(get_graph(name, _settings().graphs_paths).builder.compile().get_graph().draw_mermaid() + "\n")


@app.command()
def config(as_json: JsonFlag = False) -> None:
    """The effective settings, secrets masked."""
    data = _settings().masked()
    if as_json:
        _emit_json(data)
        return
    for key, value in data.items():
        out.print(f"[cyan]{key}[/] = {value}")


def _register_subcommands() -> None:
    # Each family of commands lives in its own module with a `register(app)`; add a line here for a new one.
    from agentmesh.interfaces.cli import chat, deploy, feedback, serve, world

    world.register(app)
    feedback.register(runs_app)
    deploy.register(app)
    serve.register(app)
    chat.register(app)
    from agentmesh.interfaces.cli import eval as eval_commands

    eval_commands.register(app)
    from agentmesh.interfaces.cli import doctor

    doctor.register(app)
    from agentmesh.interfaces.cli import evolve, prompts

    evolve.register(app)
    prompts.register(app)
    from agentmesh.interfaces.cli import worker

    worker.register(app)
    from agentmesh.interfaces.cli import mcp

    mcp.register(app)


_register_subcommands()


def main() -> None:
    """Console entry point: one line and exit 2 for bad input, exit 1 for a failed run, never a traceback."""
    from pydantic import ValidationError

    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # not standalone, click returns an Exit's code instead of raising
            sys.exit(code)
    except typer.Exit as exc:
        if exc.exit_code == 130 and isinstance(exc.__cause__, KeyboardInterrupt):  # Typer's answer to Ctrl-C
            err.print("cancelled")
        sys.exit(exc.exit_code)
    except (UserError, ValidationError) as exc:
        err.print(f"[red]error:[/] {escape(_one_line(exc))}", highlight=False)
        sys.exit(2)
    except PolicyViolation as exc:  # e.g. four eyes: the starter approving their own run's call
        err.print(f"[red]refused:[/] {escape(_one_line(exc))}", highlight=False)
        sys.exit(1)
    except AgentmeshError as exc:
        err.print(f"[red]run failed:[/] {escape(_one_line(exc))}", highlight=False)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        err.print("cancelled")
        sys.exit(130)
    except TyperException as exc:  # usage errors, raised by the Click that Typer bundles (typer._click)
        _usage_error(exc)
    except Exception as exc:
        err.print(f"[red]internal error:[/] {type(exc).__name__}: {escape(_one_line(exc))} — please report it")
        sys.exit(1)


def _usage_error(exc: TyperException) -> NoReturn:
    """A usage mistake: one line on stderr naming the command's --help, exit 2. A group run without a command
    has printed its help: that is an answer, exit 0."""
    from typer._click.exceptions import NoArgsIsHelpError

    if isinstance(exc, NoArgsIsHelpError):
        sys.exit(0)
    ctx = getattr(exc, "ctx", None)
    message = " ".join(exc.format_message().split()) or type(exc).__name__
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    err.print(f"[red]error:[/] {escape(message)}{hint}", highlight=False)
    sys.exit(2)


def _one_line(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"invalid setting {where}: {first['msg']}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
