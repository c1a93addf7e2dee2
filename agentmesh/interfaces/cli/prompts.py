"""`agentmesh prompts`: the versions of each role's prompt — list, show, diff, promote (or approve), rollback."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agentmesh.core.exceptions import UserError

out = Console()
ACTIONS = ("list", "show", "diff", "promote", "rollback", "history")


def _engine():  # type: ignore[no-untyped-def]
    from agentmesh.core.settings import get_settings
    from agentmesh.persistence.database import get_engine

    settings = get_settings()
    return get_engine(settings.resolved_database_url), settings


def _version(value: str | None, what: str) -> int:
    if value is None:
        raise UserError(f"name a {what} version, e.g. `agentmesh prompts show optimizer 2`")
    try:
        return int(value.lstrip("v"))
    except ValueError:
        raise UserError(f"{value!r} is not a version number") from None


def _settings(text: str) -> str:
    """The version's tunable settings that are set, in short (``tools 9 · plan_rounds 3``)."""
    from agentmesh.prompts.templates import PromptTemplate

    found = PromptTemplate.from_text(text).settings
    parts = [f"tools {len(v)}" if k == "tools" else f"{k} {v}" for k, v in found.items() if v is not None]
    return " · ".join(parts) or "defaults"


def prompts(
    action: Annotated[str, typer.Argument(help="list | show | diff | promote | rollback | history")],
    role: Annotated[str | None, typer.Argument(help="The agent role, e.g. optimizer.")] = None,
    version: Annotated[str | None, typer.Argument(help="A version (diff: the first of two).")] = None,
    other: Annotated[str | None, typer.Argument(help="diff: the second version (default: the active one).")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded with the promotion or rollback.")] = None,
    by: Annotated[str | None, typer.Option("--as", help="Who decides (default: your user name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Prompt versions: promote and rollback are recorded with who decided and the evidence."""
    from agentmesh.prompts import versions as v
    from agentmesh.prompts.templates import list_roles

    if action not in ACTIONS:
        raise UserError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    engine, settings = _engine()
    roles = [role] if role else list_roles(settings.prompts_path)
    for r in roles:
        v.ensure_imported(engine, r, folder=settings.prompts_path)
    actor = by or getpass.getuser()
    if action == "list":
        rows = [x for r in roles for x in v.list_versions(engine, r)]
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
            return
        table = Table("role", "version", "active", "status", "source", "settings", "sha", "rationale")
        for x in rows:
            table.add_row(x["role"], str(x["version"]), "●" if x["active"] else "", x["status"], x["source"],
                          _settings(x["text"]), x["sha"], (x["rationale"] or "")[:70])
        out.print(table)
        return
    if role is None:
        raise UserError(f"`agentmesh prompts {action}` needs a ROLE")
    if action == "history":
        rows = v.history(engine, role)
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
            return
        for e in rows:
            out.print(f"{e['created']:%Y-%m-%d %H:%M} {e['action']:<16} v{e['version']}"
                      + (f" (was v{e['previous']})" if e["previous"] else "") + f" by {e['actor']}: {e['reason'] or ''}",
                      highlight=False)
        return
    if action == "show":
        number = _version(version, role) if version else v.active_version(engine, role)
        row = v.get_version(engine, role, number)  # type: ignore[arg-type]
        if as_json:
            sys.stdout.write(json.dumps(row, indent=2, default=str) + "\n")
        else:
            sys.stdout.write(row["text"])
        return
    if action == "diff":
        a = _version(version, role)
        b = _version(other, role) if other else v.active_version(engine, role)
        sys.stdout.write(v.diff(engine, role, a, b) or f"v{a} and v{b} are the same\n")  # type: ignore[arg-type]
        return
    if action == "promote":
        number = _version(version, role)
        previous = v.promote(engine, role, number, actor=actor, reason=reason or "promoted by hand")
        out.print(f"{role}: v{number} is active (was v{previous})")
        return
    start, end = v.rollback(engine, role, _version(version, role) if version else None, actor=actor, reason=reason)
    out.print(f"{role}: rolled back from v{start} to v{end}")


def register(app: typer.Typer) -> None:
    app.command("prompts")(prompts)
