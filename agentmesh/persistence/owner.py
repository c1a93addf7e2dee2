"""One owner at a time: a run records the process that runs it (``runs.owner``, ``host:pid:token``, a new token at
each claim) and a lease (``runs.lease_until``) the owner renews while the goal runs.

A process claims a run before running it: a new run is created claimed; a resume claims it only when its owner is
gone — the lease expired, released (the run paused or ended), or the owner was a process of this host that no
longer exists — unless forced. Forcing fences the old owner: every write of a run's status, steps, model journal
and audit checks, in the write's own transaction, that the run's owner is still the writer (``check_owner``), so
the old owner's later writes are rejected (``RunFenced``) and nothing of the new owner's is overwritten.

Leases compare the clocks of the machines that share a database: keep them in sync (NTP); the lease (30 s by
default, ``run_lease_s``) is far longer than their drift.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update

from agentmesh.core.exceptions import NotFoundError, RunFenced, RunOwned
from agentmesh.persistence.database import utcnow
from agentmesh.persistence.tables import runs

__all__ = ["check_owner", "claim_run", "new_owner", "owner_alive", "renew_lease"]


def new_owner() -> str:
    """This process as a run's owner: ``host:pid:token``; the token makes each claim a new owner."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


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
