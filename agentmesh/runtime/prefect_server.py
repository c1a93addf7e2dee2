"""The local Prefect server agentmesh starts once in the background: ``python -m agentmesh.runtime.prefect_server``.

It is Prefect's own server application (``prefect.server.api.server.create_app``, the one
``prefect server start`` serves), with its background services, on 127.0.0.1, with one change: every SQLite
transaction of the server begins ``IMMEDIATE``. With Prefect's default (``DEFERRED`` for most writes), a
write that first reads fails with ``SQLITE_BUSY_SNAPSHOT`` whenever another write committed in between —
concurrent task runs, tag concurrency leases, the event persister — and the client answers the resulting
503 by sleeping 2 s (measured here: most back-to-back goals stalled 2–10 s). ``IMMEDIATE`` makes writers
queue on SQLite's busy timeout instead, which costs microseconds. A PostgreSQL-backed server needs none of
this; point ``PREFECT_API_URL`` at it. The Prefect UI is served at the server's root (``agentmesh prefect status``
prints its address).

The server exits by itself after ``--idle-minutes`` without requests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any


def _immediate_sqlite_transactions() -> None:
    from prefect.server.database import configurations

    config = getattr(configurations, "AioSqliteConfiguration", None)
    original = getattr(config, "begin_transaction", None)
    if config is None or original is None:  # a Prefect without this hook: run it as it is
        return

    @contextlib.asynccontextmanager
    async def begin_transaction(self: Any, session: Any, with_for_update: bool = False) -> AsyncIterator[Any]:
        async with original(self, session, with_for_update=True) as transaction:
            yield transaction

    config.begin_transaction = begin_transaction


def _ui_directory() -> str:
    """Where Prefect copies its UI bundle before serving it (never into the installed package): one copy per
    Prefect version in the user's cache, shared by every Prefect home — the copy takes seconds, a minute on a
    loaded machine — else the Prefect home."""
    from importlib.metadata import version

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agentmesh"
    try:
        folder = cache / f"prefect-ui-{version('prefect')}"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)
    except OSError:  # no writable cache: the Prefect home's own copy
        return str(Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect") / "ui")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle-minutes", type=float, default=15.0)
    parser.add_argument("--home", help="The Prefect home it serves (PREFECT_HOME): named so `ps` and "
                        "`agentmesh prefect stop --all` show whose it is.")
    args = parser.parse_args()
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The UI, on the same address, told where the API is (at run time, through /ui-settings).
    os.environ.setdefault("PREFECT_UI_ENABLED", "true")
    os.environ.setdefault("PREFECT_SERVER_UI_V2_ENABLED", "false")  # the root opens the UI flow_run_url links into
    os.environ["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{args.port}/api"
    os.environ.setdefault("PREFECT_UI_STATIC_DIRECTORY", _ui_directory())

    import uvicorn
    from prefect.server.api.server import create_app

    _immediate_sqlite_transactions()
    app = create_app(final=True)
    last_request = [time.monotonic()]

    @app.middleware("http")
    async def _touch(request: Any, call_next: Any) -> Any:
        last_request[0] = time.monotonic()
        return await call_next(request)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning",
                                           access_log=False))

    def watch_idle() -> None:
        while not server.started and not server.should_exit:  # idle time counts from when it answers
            time.sleep(0.5)
        last_request[0] = time.monotonic()
        while not server.should_exit:
            time.sleep(10)
            if time.monotonic() - last_request[0] > args.idle_minutes * 60:
                server.should_exit = True

    threading.Thread(target=watch_idle, daemon=True).start()
    server.run()


if __name__ == "__main__":
    main()
