"""`agentmesh serve`: the HTTP API, the OpenAI-compatible endpoints and the web page."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from typing import Annotated

import typer

from agentmesh.core.exceptions import UserError


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def check_port(host: str, port: int) -> None:
    """A UserError, before anything starts, when ``host:port`` cannot be bound (in use, or not this machine's)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UserError(f"--host {host}: cannot resolve it ({exc.strerror or exc})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            why = "is in use by another program" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise UserError(f"port {port} on {host} {why}: pick another with --port") from None


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option("--host", help="Address to bind; anything but loopback needs a token.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
        token: Annotated[str | None, typer.Option("--token", help="API token clients send as `Authorization: Bearer`; "
                                                  "default AGENTMESH_API_TOKEN.")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="offline, or an OpenAI-compatible model name.")] = None,
        log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
        processes: Annotated[int, typer.Option("--processes", "-p", min=0, max=64, help="Run goals in this many worker "
                                               "processes it starts (`agentmesh worker --goals`), to use more cores; "
                                               "0: in the server's own.")] = 0,
        limit: Annotated[int, typer.Option("--limit", min=1, help="With --processes: goals each process runs at "
                                           "once.")] = 8,
    ) -> None:
        """Serve the HTTP API (docs at /docs), the OpenAI-compatible endpoints and the web page at /."""
        import uvicorn

        from agentmesh.core.settings import get_settings
        from agentmesh.interfaces.http import create_app
        from agentmesh.interfaces.identities import Identities

        token = token or os.environ.get("AGENTMESH_API_TOKEN") or None
        if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
            raise UserError(f"--log-level must be critical, error, warning, info, debug or trace, not {log_level!r}")
        settings = get_settings(model=model)
        identities = Identities.load(settings, token=token)
        if not is_loopback(host) and not identities.enabled:
            raise UserError(f"--host {host} accepts connections from other machines: set a token "
                            "(--token, AGENTMESH_API_TOKEN or AGENTMESH_IDENTITIES_FILE) so that only your clients "
                            "can run goals")
        from agentmesh.runtime.components import components

        components(settings)  # a bad policy or tool is one line and exit 2 here, not a traceback at startup
        check_port(host, port)
        app_ = create_app(settings, identities=identities, processes=processes, limit=limit)
        shown = f"[{host}]" if ":" in host else host
        names = sorted({i.name for i in identities.by_token.values()})
        typer.echo(f"agentmesh serving on http://{shown}:{port} · API docs /docs · model {settings.model_name}"
                   + (f" · goals in {processes} worker processes" if processes else "")
                   + (f" · token required ({', '.join(names)})" if names else ""), err=True)
        uvicorn.run(app_, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)
