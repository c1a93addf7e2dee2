"""`agentmesh mcp serve`: agentmesh as an MCP server, over stdio (default) or streamable HTTP (``--http``)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from agentmesh.core.exceptions import UserError


def register(app: typer.Typer) -> None:
    mcp_app = typer.Typer(help="agentmesh as an MCP server: its tools, run_goal, and the runs as resources.",
                          no_args_is_help=True)
    app.add_typer(mcp_app, name="mcp")

    @mcp_app.command("serve")
    def serve(
        http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio.")] = False,
        host: Annotated[str, typer.Option("--host", help="--http: address to bind; anything but loopback needs a "
                                          "token.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="--http: port to listen on.")] = 8001,
        token: Annotated[str | None, typer.Option("--token", help="--http: token clients send as `Authorization: "
                                                  "Bearer`; default AGENTMESH_API_TOKEN.")] = None,
        role: Annotated[str, typer.Option("--role", help="The role clients call tools as: they see the tools the "
                                          "policy gives it (analyst: read-only).")] = "analyst",
        approvals: Annotated[str | None, typer.Option("--approvals", help="Calls that need approval: wait (default), "
                                                      "auto or deny.")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="offline, or an OpenAI-compatible model "
                                                  "name, for run_goal.")] = None,
        log_level: Annotated[str, typer.Option("--log-level", help="--http: uvicorn log level.")] = "warning",
    ) -> None:
        """Serve agentmesh over MCP: the tools the role may call (each call an audited run), run_goal, and the runs
        as resources agentmesh://runs/RUN_ID."""
        from agentmesh.core.settings import get_settings
        from agentmesh.interfaces.cli.serve import check_port, is_loopback

        if approvals is not None and approvals not in ("wait", "auto", "deny"):
            raise UserError(f"--approvals must be wait, auto or deny, not {approvals!r}")
        if not role.strip():
            raise UserError("--role needs a role name, e.g. analyst or optimizer")
        settings = get_settings(model=model, approvals=approvals)
        if not http:
            import asyncio

            from agentmesh.interfaces.mcp_server import serve_stdio

            typer.echo(f"agentmesh MCP server on stdio · role {role} · model {settings.model_name}", err=True)
            asyncio.run(serve_stdio(settings, role=role))
            return
        import uvicorn

        from agentmesh.interfaces.mcp_server import http_app

        token = token or os.environ.get("AGENTMESH_API_TOKEN") or None
        if not is_loopback(host) and not token:
            raise UserError(f"--host {host} accepts connections from other machines: set a token "
                            "(--token or AGENTMESH_API_TOKEN) so that only your clients can call agentmesh")
        if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
            raise UserError(f"--log-level must be critical, error, warning, info, debug or trace, not {log_level!r}")
        check_port(host, port)
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"agentmesh MCP server on http://{shown}:{port}/mcp · role {role} · model {settings.model_name}"
                   + (" · token required" if token else ""), err=True)
        uvicorn.run(http_app(settings, role=role, token=token, host=host), host=host, port=port, log_level=log_level,
                    timeout_graceful_shutdown=10)
