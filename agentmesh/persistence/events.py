"""Run events: one stream from the runtime feeds the CLI, the chat, the HTTP API's Server-Sent Events and
the web page. Each event is stored with a per-run sequence number, so a client that reconnects resumes
with ``Last-Event-ID`` and misses nothing; live subscribers in the same process are woken at once.

Event types: run_started, plan, step_started, step_finished, model_call, tool_call, tool_result,
approval_requested, finding, decision, warning, run_finished — and ``token``, a piece of a model reply as it
streams. Tokens are live only: published to the subscribers in this process, never stored (a row per token would
multiply a run's writes by the length of every reply, and the whole reply is journalled anyway). A token carries
no sequence number of its own; ``after`` is the number of the last stored event before it, which is how a
follower puts it in order among the stored events.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from agentmesh.persistence.tables import events

__all__ = ["EventLog", "event_log"]


_INSERT = insert(events)  # built once: a run stores an event with nearly every record


class EventLog:
    """Appends a run's events to the database and wakes the in-process subscribers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(list)
        self._live: dict[str, list[deque[dict[str, Any]]]] = defaultdict(list)

    def append(self, run_id: str, event: dict[str, Any], conn: Connection | None = None) -> int:
        """Store the event under the run's next number and wake the run's subscribers in this process.

        With ``conn``, the event is written in that connection's transaction, so a record and its event are one
        commit (a step's row and ``step_started``; an audit row and ``tool_call``)."""
        if conn is None:
            with self.engine.begin() as conn:
                return self.append(run_id, event, conn)
        # The database's write lock is taken before ours (SQLite: BEGIN IMMEDIATE), so two writers never wait
        # on each other in opposite orders, and numbers are handed out in the order the writers commit.
        savepoint = conn.begin_nested if conn.dialect.name != "sqlite" else contextlib.nullcontext
        for attempt in range(20):
            with self._lock:
                cached = self._next.get(run_id)
                seq = cached if cached is not None else (conn.execute(
                    select(func.max(events.c.seq)).where(events.c.run_id == run_id)).scalar() or 0) + 1
                self._next[run_id] = seq + 1
            event["seq"] = seq
            try:
                with savepoint():  # PostgreSQL: a failed insert must not abort the caller's transaction
                    conn.execute(_INSERT, {"run_id": run_id, "seq": seq, "type": str(event.get("type")),
                                           "time": float(event.get("time") or 0), "data": event})
                break
            except IntegrityError:  # another process (a task worker, agentmesh.remote) took this number
                with self._lock:
                    self._next.pop(run_id, None)
                if attempt == 19:
                    raise
        self._wake(run_id)
        return seq

    def publish(self, run_id: str, event: dict[str, Any]) -> None:
        """Hand a live-only event (a token) to the run's subscribers in this process; nothing is stored."""
        with self._lock:
            queues = list(self._live.get(run_id, ()))
            event["after"] = self._next.get(run_id, 1) - 1
        if not queues:
            return
        for queue in queues:
            queue.append(event)
        self._wake(run_id)

    @contextlib.contextmanager
    def subscribe(self, run_id: str) -> Iterator[deque[dict[str, Any]]]:
        """The run's live-only events published while the block runs, in order (a deque the caller pops)."""
        queue: deque[dict[str, Any]] = deque()
        with self._lock:
            self._live[run_id].append(queue)
        try:
            yield queue
        finally:
            with self._lock:
                self._live[run_id].remove(queue)
                if not self._live[run_id]:
                    del self._live[run_id]

    def _wake(self, run_id: str) -> None:
        with self._lock:
            waiters = self._waiters.pop(run_id, [])
        # Woken now, the subscribers of this loop read once the writer's synchronous block has committed; one on
        # another thread that reads too early sees the event at its next wake or poll.
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)

    def read(self, run_id: str, after: int = 0) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(events.c.data).where(events.c.run_id == run_id, events.c.seq > after).order_by(events.c.seq)
            ).all()
        return [r[0] for r in rows]

    async def wait(self, run_id: str, timeout: float) -> None:
        """Return when the run has a new event, or after ``timeout`` seconds (another process may write)."""
        flag = asyncio.Event()
        with self._lock:
            self._waiters[run_id].append((asyncio.get_running_loop(), flag))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(flag.wait(), timeout)


_logs: dict[int, EventLog] = {}


def event_log(engine: Engine) -> EventLog:
    """The process-wide event log of a database."""
    log = _logs.get(id(engine))
    if log is None:
        log = _logs[id(engine)] = EventLog(engine)
    return log
