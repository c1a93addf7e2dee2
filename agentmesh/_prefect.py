"""Prefect set-up: analytics off, a Prefect home under AGENTMESH_HOME, and the API runs are recorded in.

- ``PREFECT_API_URL`` set: that server is used.
- otherwise, ``AGENTMESH_PREFECT=local`` (the default): a Prefect server on 127.0.0.1 that agentmesh starts
  once in the background (``agentmesh._prefect_server``) and every later process reuses — reached in
  milliseconds instead of the 5–12 s an embedded server takes to start in each process, and able to run
  schedules. Its state (port, pid, log) lives in ``$PREFECT_HOME/agentmesh-server.json``.
- ``AGENTMESH_PREFECT=embedded``: Prefect's own ephemeral mode.

``configure_prefect`` runs before the first ``import prefect`` of a process (Prefect reads settings at import);
when Prefect was imported first, it has Prefect read them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .exceptions import ConfigError
from .settings import Settings

_configured = False
_STATE = "agentmesh-server.json"


def configure_prefect(settings: Settings) -> None:
    global _configured
    if _configured:
        return
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_HOME", str(settings.resolved_home / "prefect"))
    # Task and flow results stay in memory: agentmesh persists what matters in its own database.
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    # Prefect's console logs go to stderr at WARNING so `--json` stdout stays one document; the run
    # logger still sends everything to the Prefect API.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    _quiet_expected_failures()
    # Embedded means Prefect's ephemeral server; otherwise a missing API URL is an error, never a silent
    # second server.
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true" if settings.prefect == "embedded" else "false"
    if not os.environ.get("PREFECT_API_URL") and settings.prefect == "local":
        os.environ["PREFECT_API_URL"] = ensure_local_server(Path(os.environ["PREFECT_HOME"]))
        os.environ["AGENTMESH_LOCAL_PREFECT"] = "1"
    if "prefect.context" in sys.modules:
        # Prefect was imported first (a user's script, a test module) and read its settings then: have it
        # read them again, or it would ignore PREFECT_API_URL and start an ephemeral server of its own.
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    _configured = True


class _NoTracebackForRunErrors(logging.Filter):
    """Prefect logs a failed task's traceback; for agentmesh's own run failures (a model that kept failing, a
    budget, an answer that never validated) the one-line message is the whole story, and a traceback on the
    CLI's stderr would read as a crash. A user's node raising anything else keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .exceptions import AgentmeshError

        if record.exc_info and isinstance(record.exc_info[1], AgentmeshError):
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_expected_failures() -> None:
    task_runs = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, _NoTracebackForRunErrors) for f in task_runs.filters):
        task_runs.addFilter(_NoTracebackForRunErrors())


def ensure_configured() -> None:
    """Configure Prefect from the environment's settings, unless a run already configured it."""
    if not _configured:
        from .settings import get_settings

        configure_prefect(get_settings())


def api_url() -> str | None:
    """The Prefect API runs are recorded in; None for the embedded (ephemeral) server."""
    return os.environ.get("PREFECT_API_URL") or None


def _healthy(url: str, timeout: float = 0.5) -> bool:
    """The local server answers its health check (plain HTTP on 127.0.0.1: the standard library's client,
    which skips the SSL context an httpx client loads, ~0.1 s of every cold start)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", f"{parts.path}/health")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_server_state(prefect_home: Path) -> dict | None:
    path = prefect_home / _STATE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def ensure_local_server(prefect_home: Path, *, wait_s: float = 90.0) -> str:
    """The URL of this home's local Prefect server, starting it if it is not running."""
    import fcntl

    prefect_home.mkdir(parents=True, exist_ok=True)
    state = local_server_state(prefect_home)
    if state and _healthy(state["url"]):
        return state["url"]
    # One process starts the server; the others wait on the lock and then find it running.
    with open(prefect_home / "agentmesh-server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = local_server_state(prefect_home)
        if state and _healthy(state["url"]):
            return state["url"]
        if state and _alive(state.get("pid")) and _wait(state["url"], state["pid"], wait_s):
            return state["url"]  # started by someone else, was still booting
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api"
        log = open(prefect_home / "agentmesh-server.log", "ab")  # noqa: SIM115  (the server's, for its life)
        env = dict(os.environ, PREFECT_HOME=str(prefect_home))
        env.pop("PREFECT_API_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "agentmesh._prefect_server", "--port", str(port)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        (prefect_home / _STATE).write_text(json.dumps({"url": url, "pid": process.pid, "port": port}))
        if not _wait(url, process.pid, wait_s):
            raise ConfigError(
                f"the local Prefect server did not start (see {prefect_home / 'agentmesh-server.log'}); "
                "set PREFECT_API_URL to a running server, or AGENTMESH_PREFECT=embedded"
            )
        return url


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie (our own exited child) is not alive.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def _wait(url: str, pid: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if _healthy(url):
            return True
        if not _alive(pid):
            return False
        time.sleep(0.1)
    return False


def stop_local_server(prefect_home: Path) -> bool:
    """Stop this home's local Prefect server; True if one was running."""
    import signal

    state = local_server_state(prefect_home)
    if not state or not _alive(state.get("pid")):
        return False
    os.kill(state["pid"], signal.SIGTERM)
    for _ in range(50):
        if not _alive(state["pid"]):
            break
        time.sleep(0.1)
    else:
        os.kill(state["pid"], signal.SIGKILL)
    (prefect_home / _STATE).unlink(missing_ok=True)
    return True


# -- one API client per event loop ----------------------------------------------------------------------

_loop_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
_sync_client: Any = None


async def _loop_client() -> Any:
    from prefect.context import AsyncClientContext

    loop = asyncio.get_running_loop()
    if loop not in _loop_clients:
        context = AsyncClientContext()
        await context.client.__aenter__()
        await context.client.raise_for_api_version_mismatch_once()
        if loop in _loop_clients:  # another goal got there first
            await context.client.__aexit__(None, None, None)
        else:
            _loop_clients[loop] = context
    return _loop_clients[loop]


@contextlib.asynccontextmanager
async def shared_clients() -> AsyncIterator[None]:
    """Let every goal of an event loop use one Prefect API client (and the process one sync client).

    Otherwise each flow run builds its own async client and, for its result store, a sync one: each loads
    an SSL context from certifi (~30 ms of CPU on an idle machine, several times that under load), sets up
    pydantic models and asks the server for its version.
    """
    global _sync_client
    from prefect.context import AsyncClientContext, SyncClientContext

    tokens: list[tuple[Any, Any]] = []
    if AsyncClientContext.get() is None:
        tokens.append((AsyncClientContext.__var__, AsyncClientContext.__var__.set(await _loop_client())))
    if SyncClientContext.get() is None:
        if _sync_client is None:
            context = SyncClientContext()
            context.client.__enter__()
            _sync_client = context
        tokens.append((SyncClientContext.__var__, SyncClientContext.__var__.set(_sync_client)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
