"""`agentmesh runs feedback RUN_ID --score N --note TEXT`: an operator's verdict on a run, for decision memory."""

from __future__ import annotations

import json
from typing import Annotated

import typer

__all__ = ["register"]


def register(runs_app: typer.Typer) -> None:
    """Add `feedback` to the `runs` commands."""
    runs_app.command("feedback")(runs_feedback)


def runs_feedback(
    run_id: Annotated[str, typer.Argument(help="A run id (a unique prefix will do).")],
    score: Annotated[int, typer.Option("--score", help="1 (bad) to 5 (good).")],
    note: Annotated[str, typer.Option("--note", help="What happened, e.g. what the change caused.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
) -> None:
    """Score a run and say what happened; graphs with decision memory (`learning`) recall it for similar goals."""
    from agentmesh.core.settings import get_settings
    from agentmesh.memory import add_feedback
    from agentmesh.persistence.database import get_engine

    row = add_feedback(get_engine(get_settings().resolved_database_url), run_id=run_id, score=score, note=note)
    if as_json:
        typer.echo(json.dumps({**row, "created": row["created"].isoformat()}))
    else:
        typer.echo(f"feedback {row['id']} recorded on run {row['run_id']} (score {score}/5)")
