"""One owner at a time: a run records the process that runs it (``runs.owner``, ``host:pid:token``, a new token at
each claim) and a lease (``runs.lease_until``) the owner renews while the goal runs.

A process claims a run before running it: a new run is created claimed; a resume claims it only when its owner is
gone — the lease expired, released (the run paused or ended), or the owner was a process of this host that no
longer exists — unless forced. Forcing fences the old owner: every write of a run's status, steps, model journal
and audit checks, in the write's own transaction, that the run's owner is still the writer (``check_owner``), so
the old owner's later writes are rejected (``RunFenced``) and nothing of the new owner's is overwritten.

A remote role's step is held the same way (``step_sends``): the goal records each send of the step, the task
worker that takes it records itself (``host:pid``) and a lease it renews while it works, and the goal, waiting,
tells a worker that is slow (lease current) from one that died (lease lapsed, or its process gone) and sends the
step again (``agentmesh.runtime.remote``).

Leases compare the clocks of the machines that share a database: keep them in sync (NTP); the lease (30 s by
default, ``run_lease_s``) is far longer than their drift.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update

from agentmesh.core.exceptions import NotFoundError, RunFenced, RunOwned
from agentmesh.persistence.database import utcnow
from agentmesh.persistence.tables import runs, step_sends, steps

__all__ = [
    "check_owner", "claim_run", "drop_send", "new_owner", "owner_alive", "renew_lease", "renew_step", "renewing",
    "send_state", "send_step", "take_step", "this_process",
]


def this_process() -> str:
    """``host:pid``: where a step ran (``steps.worker``), and the start of an owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def new_owner() -> str:
    """This process as a run's owner: ``host:pid:token``; the token makes each claim a new owner."""
    return f"{this_process()}:{uuid.uuid4().hex[:12]}"


def lease_end(lease_s: float) -> datetime:
    return utcnow() + timedelta(seconds=lease_s)


def owner_alive(record: dict[str, Any]) -> bool:
    """Whether the run's owner still holds it: its lease is current, and — an owner on this host — its process
    exists (a process killed here is seen at once; one elsewhere when its lease runs out)."""
    owner, until = record.get("owner"), record.get("lease_until")
    if not owner or until is None:
        return False
    if until.tzinfo is None:  # SQLite keeps no zone; the values were written in UTC
        until = until.replace(tzinfo=UTC)
    if until <= utcnow():
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: it exists
            pass
    return True


def describe(record: dict[str, Any]) -> str:
    """``process 4711 on host-a (lease until 12:00:31 UTC)``."""
    host, _, rest = str(record.get("owner") or "?").partition(":")
    until = record.get("lease_until")
    when = f" (lease until {until:%H:%M:%S} UTC)" if until is not None else ""
    return f"process {rest.partition(':')[0]} on {host}{when}"


def claim_run(engine: Engine, run_id: str, owner: str, lease_s: float, *, force: bool = False) -> dict[str, Any]:
    """Make ``owner`` the run's owner, for ``lease_s`` seconds; returns the run's record as it was before.
    ``RunOwned`` when another owner still holds it and ``force`` is false."""
    with engine.begin() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id).with_for_update()).mappings().first()
        if row is None:
            raise NotFoundError(f"no run {run_id!r}; `agentmesh runs list` shows the runs")
        record = dict(row)
        if not force and owner_alive(record):
            raise RunOwned(refusal(record))
        conn.execute(update(runs).where(runs.c.run_id == run_id)
                     .values(owner=owner, lease_until=lease_end(lease_s), updated=utcnow()))
    return record


def refusal(record: dict[str, Any]) -> str:
    """The one line refusing to resume a run its owner still holds."""
    return (f"run {record['run_id']} is being run by {describe(record)}; wait for it, or take it over with "
            f"--force (that process's later writes to the run are then rejected)")


def renew_lease(engine: Engine, run_id: str, owner: str, lease_s: float) -> bool:
    """Extend the owner's lease; False when the run has another owner now (this one was fenced) or was released."""
    with engine.begin() as conn:
        # Not a released lease: a beat racing the run's last write must not make a paused run look alive.
        done = conn.execute(update(runs).where(runs.c.run_id == run_id, runs.c.owner == owner,
                                               runs.c.lease_until.is_not(None))
                            .values(lease_until=lease_end(lease_s)))
    return done.rowcount > 0


# Built once: check_owner runs in every write of a run, and building the statement costs thrice executing it.
_OWNER = select(runs.c.owner).where(runs.c.run_id == bindparam("b_run_id")).with_for_update(read=True)


def check_owner(conn: Connection, run_id: str, owner: str | None) -> None:
    """In the caller's write transaction: ``RunFenced`` unless ``owner`` still owns the run (None: no owner to
    check, e.g. a person's verdict, or a gateway used outside a goal). PostgreSQL: the row is share-locked until
    the transaction ends, so a takeover waits for this write, and a write after the takeover sees it."""
    if owner is None:
        return
    found = conn.execute(_OWNER, {"b_run_id": run_id}).first()
    if found is None or found[0] != owner:
        raise RunFenced(fenced_message(run_id))


def fenced_message(run_id: str) -> str:
    return (f"run {run_id} was taken over by another process (runs resume --force); "
            "this process stopped without writing to it")


@contextlib.contextmanager
def renewing(renew: Callable[[], bool], every_s: float, *, name: str,
             warn: Callable[[str], None] | None = None) -> Iterator[None]:
    """Call ``renew`` every ``every_s`` seconds while the block runs, until it returns False (the lease is someone
    else's now); in a thread (in a copy of the caller's context), so a busy event loop cannot let the lease lapse. A
    renewal that fails (the database away for a moment) is tried again at the next beat; ``warn`` (default: this
    module's logger) says so."""
    stop = threading.Event()
    say = warn or logging.getLogger(__name__).warning

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                if not renew():
                    return
            except Exception as exc:
                say(f"could not renew {name}: {type(exc).__name__}")

    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True, name=name)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


# -- remote steps ------------------------------------------------------------------------------------------


def send_step(engine: Engine, run_id: str, step_key: str) -> str:
    """Record one send of a run's step to the task workers; its id, for the worker to take it by."""
    send_id = uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(insert(step_sends).values(send_id=send_id, run_id=run_id, step_key=step_key, created=utcnow()))
    return send_id


def take_step(engine: Engine, send_id: str, worker: str, lease_s: float, *, owner: str | None) -> bool:
    """The task worker ``worker`` takes a send, for ``lease_s`` seconds, and is recorded as the step's worker.
    False when the send was taken already or is no longer waited for (the goal sent it again, or gave up);
    ``RunFenced`` when the goal's owner ``owner`` no longer owns the run."""
    with engine.begin() as conn:
        taken = conn.execute(update(step_sends).where(step_sends.c.send_id == send_id, step_sends.c.worker.is_(None))
                             .values(worker=worker, lease_until=lease_end(lease_s)))
        if taken.rowcount == 0:
            return False
        run_id, step_key = conn.execute(select(step_sends.c.run_id, step_sends.c.step_key)
                                        .where(step_sends.c.send_id == send_id)).one()
        check_owner(conn, run_id, owner)
        conn.execute(update(steps).where(steps.c.run_id == run_id, steps.c.step_key == step_key)
                     .values(worker=worker))
    return True


def renew_step(engine: Engine, send_id: str, worker: str, lease_s: float) -> bool:
    """Extend the worker's lease on a send; False when the send is no longer waited for."""
    with engine.begin() as conn:
        done = conn.execute(update(step_sends).where(step_sends.c.send_id == send_id, step_sends.c.worker == worker)
                            .values(lease_until=lease_end(lease_s)))
    return done.rowcount > 0


def send_state(engine: Engine, send_id: str) -> tuple[Literal["waiting", "running", "lost"], str | None]:
    """Where a send stands, and its worker: not taken yet, taken by a live worker, or its worker is gone (lease
    lapsed, or — a worker on this host — its process no longer exists)."""
    with engine.connect() as conn:
        row = conn.execute(select(step_sends.c.worker, step_sends.c.lease_until)
                           .where(step_sends.c.send_id == send_id)).first()
    if row is None or row.worker is None:
        return "waiting", None
    return ("running" if owner_alive({"owner": row.worker, "lease_until": row.lease_until}) else "lost"), row.worker


def drop_send(engine: Engine, send_id: str) -> None:
    """Forget a send the goal no longer waits for: a worker that takes it later does nothing."""
    with engine.begin() as conn:
        conn.execute(delete(step_sends).where(step_sends.c.send_id == send_id))
