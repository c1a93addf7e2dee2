"""LangGraph's checkpointer for a run: SQLite under the home by default, PostgreSQL when the database is."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from agentmesh.core.exceptions import ConfigError
from agentmesh.core.settings import Settings

__all__ = ["checkpointer"]


@contextlib.asynccontextmanager
async def checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver]:
    """LangGraph's own saver: SQLite under the home by default, PostgreSQL when the database is."""
    url = settings.checkpoint_url or settings.resolved_database_url
    if url.startswith("postgres"):
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError:
            raise ConfigError("PostgreSQL checkpoints need its extra: pip install 'agentmesh[postgres]'") from None

        plain = "postgresql://" + url.split("://", 1)[1]
        async with AsyncPostgresSaver.from_conn_string(plain) as saver:
            await saver.setup()
            yield saver
    else:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = settings.resolved_home / "checkpoints.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        # Concurrent goals each hold a connection: WAL, a busy timeout and write transactions that take the
        # lock when they begin (IMMEDIATE) make writers queue instead of failing with "database is locked"
        # (the saver's own from_conn_string keeps SQLite's 5 s default and deferred transactions).
        async with aiosqlite.connect(str(path), timeout=60, isolation_level="IMMEDIATE") as conn:
            # As the store: in WAL mode, NORMAL survives a killed process (what crash and resume are about) without
            # an fsync per commit (~0.4 ms here, two or three commits a node); an OS crash may lose the last ones.
            await conn.execute("PRAGMA synchronous=NORMAL")
            sqlite_saver = AsyncSqliteSaver(conn)
            await _setup_once(sqlite_saver, str(path))
            yield sqlite_saver


_saver_setups: set[str] = set()
# One lock per event loop: a process may run goals in successive loops (`run_goal` twice, an eval's worker
# process running one batch of trials after another), and an asyncio lock belongs to the loop it first waited in.
_setup_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def _setup_once(saver: Any, path: str) -> None:
    """Create the checkpoint tables (and WAL mode) once per file and process: the saver's own setup runs a
    script that fails at once with "database is locked" while other goals hold the file."""
    import sqlite3

    from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random

    if path in _saver_setups:
        saver.is_setup = True
        return
    async with _setup_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock()):
        if path not in _saver_setups:
            async for attempt in AsyncRetrying(retry=retry_if_exception_type(sqlite3.OperationalError),
                                               stop=stop_after_attempt(50), wait=wait_random(0.01, 0.1),
                                               reraise=True):
                with attempt:
                    await saver.setup()
            _saver_setups.add(path)
    saver.is_setup = True
