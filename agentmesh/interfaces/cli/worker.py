"""`agentmesh worker`: run goals, or the agent steps of some roles, on this machine (agentmesh.runtime.goal_workers,
agentmesh.runtime.remote)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from agentmesh.core.exceptions import UserError


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        role: Annotated[list[str] | None, typer.Option("--role", "-r", help="A role whose steps this machine runs; "
                                                       "repeat it, or give several separated by commas.")] = None,
        goals: Annotated[bool, typer.Option("--goals", help="Run whole goals sent to workers (`agentmesh serve "
                                            "--processes`, `run_goals(processes=...)`).")] = False,
        model: Annotated[str | None, typer.Option("--model", "-m", help="The model this machine's steps use.")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="Goals or steps run at once.")] = 4,
    ) -> None:
        """Serve goals (--goals) and the agent steps of the named roles (--role) as a Prefect task worker, until
        interrupted.

        Goals send a role's steps here when `AGENTMESH_REMOTE_ROLES` names it; `agentmesh serve --processes` and
        `run_goals(processes=...)` send whole goals to --goals workers. This machine needs the same agentmesh
        database (AGENTMESH_DATABASE_URL) and Prefect API (PREFECT_API_URL) as the senders.
        """
        from agentmesh.core.settings import get_settings
        from agentmesh.prompts.templates import list_roles
        from agentmesh.runtime.prefect import configure_prefect

        roles = sorted({r.strip() for value in role or [] for r in value.split(",") if r.strip()})
        if not roles and not goals:
            raise UserError("say what this worker runs: --goals, or --role ROLE (e.g. `agentmesh worker --role "
                            "analyst`), or both")
        settings = get_settings(model=model)
        if model:  # the steps this process runs read their settings again (agentmesh.runtime.remote.worker_settings)
            os.environ["AGENTMESH_MODEL"] = model
        known = list_roles(settings.prompts_path)
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise UserError(f"no prompt for role {unknown[0]!r}; known roles: {', '.join(known)}")
        configure_prefect(settings)
        from agentmesh.runtime.components import components
        from agentmesh.runtime.goal_workers import serve
        from agentmesh.runtime.remote import worker_id

        components(settings)  # a broken policy or tools folder is one line now, not at the first step
        serving = (["goals"] if goals else []) + ([f"roles: {', '.join(roles)}"] if roles else [])
        typer.echo(f"agentmesh worker {worker_id()} serving {' and '.join(serving)} · model {settings.model_name}",
                   err=True)
        try:
            serve(roles=roles, goals=goals, limit=limit)
        except KeyboardInterrupt:
            typer.echo("worker stopped", err=True)
