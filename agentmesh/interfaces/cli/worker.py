"""`agentmesh worker`: run the agent steps of some roles on this machine (see agentmesh.remote)."""

from __future__ import annotations

from typing import Annotated

import typer

from agentmesh.core.exceptions import UserError


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        role: Annotated[list[str], typer.Option("--role", "-r", help="A role whose steps this machine runs; repeat "
                                                "it, or give several separated by commas.")],
        model: Annotated[str | None, typer.Option("--model", "-m", help="The model this machine's steps use.")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="Steps run at once.")] = 4,
    ) -> None:
        """Serve agent steps of the named roles as a Prefect task worker, until interrupted.

        Goals send a role's steps here when `AGENTMESH_REMOTE_ROLES` names it; this machine needs the same
        agentmesh database (AGENTMESH_DATABASE_URL) and Prefect API (PREFECT_API_URL) as the goals.
        """
        from agentmesh.core.settings import get_settings
        from agentmesh.prompts.templates import list_roles
        from agentmesh.runtime.prefect import configure_prefect

        roles = sorted({r.strip() for value in role for r in value.split(",") if r.strip()})
        settings = get_settings(model=model)
        known = list_roles(settings.prompts_path)
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise UserError(f"no prompt for role {unknown[0]!r}; known roles: {', '.join(known)}")
        configure_prefect(settings)
        from agentmesh.runtime.components import components
        from agentmesh.runtime.remote import serve, worker_id

        components(settings)  # a broken policy or tools folder is one line now, not at the first step
        typer.echo(f"agentmesh worker {worker_id()} serving roles: {', '.join(roles)} · model {settings.model_name}",
                   err=True)
        try:
            serve(roles, limit=limit)
        except KeyboardInterrupt:
            typer.echo("worker stopped", err=True)
