"""Prefect set-up: analytics off, a Prefect home under AGENTMESH_HOME, and the API runs are recorded in.

- ``PREFECT_API_URL`` set: that server is used.
- otherwise, ``AGENTMESH_PREFECT=local`` (the default): a Prefect server on 127.0.0.1 that agentmesh starts
  once in the background (``agentmesh.runtime.prefect_server``) and every later process reuses — reached in
  milliseconds instead of the 5–12 s an embedded server takes to start in each process, and able to run
  schedules. Its state (port, pid, log) lives in ``$PREFECT_HOME/agentmesh-server.json``.
- ``AGENTMESH_PREFECT=embedded``: Prefect's own ephemeral mode.

``configure_prefect(settings)`` points the process's Prefect at the API the settings name before anything talks
to it (the run-context factory, ``compile`` and the eval and evolution flows call it); when Prefect was imported
first, it has Prefect read its settings again.
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

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from agentmesh.core.exceptions import ConfigError
from agentmesh.core.settings import Settings

_configured: tuple[str, str] | None = None  # (what the process records runs in, the settings' Prefect home)
_STATE = "agentmesh-server.json"
_SERVER_MODULE = "agentmesh.runtime.prefect_server"


def configure_prefect(settings: Settings) -> None:
    """Point this process's Prefect at the API the settings name: ``prefect_api_url``, else this Prefect home's
    local server (started once, reused), else (``prefect = "embedded"``) Prefect's ephemeral mode.

    Prefect's settings are the process's, so a process records its runs in one API: settings that name another
    one later are a ConfigError, never a silent switch.
    """
    global _configured
    home = str(settings.resolved_prefect_home)
    if _configured is not None:
        api, configured_home = _configured
        if (settings.prefect_api_url or api) != api or (not settings.prefect_api_url and home != configured_home
                                                         and api != "embedded"):
            raise ConfigError(
                f"this process already records its runs in Prefect at {api} (Prefect home {configured_home}); "
                f"settings naming {settings.prefect_api_url or home} need a process of their own"
            )
        return
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ["PREFECT_HOME"] = home
    # Task and flow results stay in memory: agentmesh persists what matters in its own database.
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    # Prefect's console logs go to stderr at WARNING so `--json` stdout stays one document and progress lines
    # stay readable; the run loggers send INFO and up to the Prefect API, so a flow run's Logs tab tells what
    # its agents did (agentmesh.runtime.observe).
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "INFO")
    # A task worker's background task (a goal, a remote step) has no flow run: its own log lines stay local.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    _quiet_expected_failures()
    # Embedded means Prefect's ephemeral server; otherwise a missing API URL is an error, never a silent
    # second server.
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true" if settings.prefect == "embedded" else "false"
    if settings.prefect_api_url:
        os.environ["PREFECT_API_URL"] = api = settings.prefect_api_url
    elif settings.prefect == "local":
        os.environ["PREFECT_API_URL"] = api = ensure_local_server(Path(home), idle_minutes=settings.prefect_idle_minutes)
        os.environ["AGENTMESH_LOCAL_PREFECT"] = "1"
    else:
        os.environ.pop("PREFECT_API_URL", None)
        api = "embedded"
    if "prefect.context" in sys.modules:
        # Prefect was imported first (a user's script, a test module) and read its settings then: have it
        # read them again, or it would ignore PREFECT_API_URL and start an ephemeral server of its own.
        from prefect.context import refresh_global_settings_context
        from prefect.logging.configuration import setup_logging

        refresh_global_settings_context()
        setup_logging(incremental=True)  # the log levels above
    _quiet_cancellations()
    _configured = (api, home)


class _NoTracebackForRunErrors(logging.Filter):
    """Prefect logs a failed task's traceback; for agentmesh's own run failures (a model that kept failing, a
    budget, an answer that never validated) the one-line message is the whole story, and a traceback on the
    CLI's stderr would read as a crash. A user's node raising anything else keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from agentmesh.core.exceptions import AgentmeshError

        if record.exc_info and isinstance(record.exc_info[1], AgentmeshError):
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_expected_failures() -> None:
    task_runs = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, _NoTracebackForRunErrors) for f in task_runs.filters):
        task_runs.addFilter(_NoTracebackForRunErrors())


class _QuietOnCancel(logging.Filter):
    """A run the user cancels (Ctrl-C, a cancelled task) is not a crash. Prefect logs "Crash detected!" and
    "Finished in state Crashed" while the cancellation unwinds; on the console those lines would bury the one line
    the interface prints for it. Only the console handler gets this filter: the Prefect API still gets every line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not isinstance(sys.exc_info()[1], (asyncio.CancelledError, KeyboardInterrupt))


def console_handlers() -> list[logging.Handler]:
    """Prefect's console handlers in this process (after setting up Prefect's logging, as ``import prefect``
    would: the handlers exist from then on; later set-ups only change their levels)."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
                                      if name.startswith("prefect"))]
    found: list[logging.Handler] = []
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler).__name__ == "PrefectConsoleHandler" and handler not in found:
                found.append(handler)
    return found


def _quiet_cancellations() -> None:
    for handler in console_handlers():
        if not any(isinstance(f, _QuietOnCancel) for f in handler.filters):
            handler.addFilter(_QuietOnCancel())


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


def _port_free(port: Any) -> bool:
    if not isinstance(port, int):
        return False
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def local_server_state(prefect_home: Path) -> dict | None:
    path = prefect_home / _STATE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def ensure_local_server(prefect_home: Path, *, wait_s: float = 300.0, idle_minutes: float = 15.0) -> str:
    """The URL of this home's local Prefect server, starting it if it is not running: one per Prefect home at
    most (a recorded one that is alive but never answers is stopped first); it exits after ``idle_minutes``
    without a request."""
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
        if state and _alive(state.get("pid")):
            if _wait(state["url"], state["pid"], wait_s):
                return state["url"]  # started by someone else, was still booting
            stop_local_server(prefect_home)  # alive but not answering: not a second server next to it
        # The port it had before, when free: links to its UI pages (flow_run_url) outlive a restart.
        port = state["port"] if state and _port_free(state.get("port")) else _free_port()
        url = f"http://127.0.0.1:{port}/api"
        log = open(prefect_home / "agentmesh-server.log", "ab")  # noqa: SIM115  (the server's, for its life)
        env = dict(os.environ, PREFECT_HOME=str(prefect_home))
        env.pop("PREFECT_API_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", _SERVER_MODULE, "--port", str(port), "--idle-minutes", f"{idle_minutes:g}",
             "--home", str(prefect_home)],
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


def local_servers() -> list[dict[str, Any]]:
    """Every local Prefect server agentmesh started for this user, whatever its home: pid and home."""
    listed = subprocess.run(["ps", "-ww", "-u", str(os.getuid()), "-o", "pid=", "-o", "args="], capture_output=True,
                            text=True, check=False).stdout
    found = []
    for line in listed.splitlines():
        pid, _, args = line.strip().partition(" ")
        words = args.split()
        if not pid.isdigit() or _SERVER_MODULE not in words:
            continue
        home = words[words.index("--home") + 1] if "--home" in words[:-1] else None
        found.append({"pid": int(pid), "home": home})
    return found


def stop_all_local_servers(under: Path | None = None) -> list[dict[str, Any]]:
    """Stop every local Prefect server agentmesh started for this user (only those whose home is inside
    ``under``, when given); the ones stopped."""
    import signal

    servers = [s for s in local_servers()
               if under is None or (s["home"] and Path(s["home"]).is_relative_to(under.resolve()))]
    for server in servers:
        with contextlib.suppress(OSError):
            os.kill(server["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(_alive(s["pid"]) for s in servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    for server in servers:
        if _alive(server["pid"]):
            with contextlib.suppress(OSError):
                os.kill(server["pid"], signal.SIGKILL)
        state = local_server_state(Path(server["home"])) if server["home"] else None
        if state and state.get("pid") == server["pid"]:
            (Path(server["home"]) / _STATE).unlink(missing_ok=True)
    return servers


# -- values handed to a flow this process calls -----------------------------------------------------------


class InProcess(BaseModel):
    """A typed value given to a flow this process calls, as one of its parameters. The flow gets the value itself;
    Prefect stores only ``shown`` as the parameter (never settings, models or callbacks) and does not walk it."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    value: Any
    """What the flow gets."""
    shown: dict[str, Any] = Field(default_factory=dict)
    """What the flow run's parameters show in Prefect."""

    @model_serializer
    def _shown(self) -> dict[str, Any]:
        return self.shown


def in_process(value: Any, **shown: Any) -> Any:
    """``value`` as a flow parameter (see ``InProcess``): ``goal_flow(..., invocation=in_process(inv))``."""
    from prefect.utilities.annotations import quote

    return quote(InProcess(value=value, shown=shown))


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

    from agentmesh.runtime._upstream import prefect_context

    with contextlib.ExitStack() as stack:
        if AsyncClientContext.get() is None:
            stack.enter_context(prefect_context(AsyncClientContext, await _loop_client()))
        if SyncClientContext.get() is None:
            if _sync_client is None:
                context = SyncClientContext()
                context.client.__enter__()
                _sync_client = context
            stack.enter_context(prefect_context(SyncClientContext, _sync_client))
        yield
