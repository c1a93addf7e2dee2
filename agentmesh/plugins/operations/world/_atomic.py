"""The one way the world changes: a transaction that locks, checks, applies, and remembers its key.

Write methods lock their domain's ``world_meta`` row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
engine already begins every transaction with ``BEGIN IMMEDIATE``), so limits spanning rows are checked
against a state nothing else changes meanwhile. The result is stored under the idempotency key in the same
transaction: a call repeated with that key returns the stored result, marked ``"replayed": true``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from agentmesh.core.exceptions import NotFoundError
from agentmesh.persistence.database import utcnow
from agentmesh.plugins.operations.world._tables import effects, meta

__all__ = ["DOMAINS", "atomic", "stored_effect"]

DOMAINS = ("services", "refunds", "outbox", "datasets")


def stored_effect(conn: Connection, key: str, method: str) -> dict[str, Any] | None:
    row = conn.execute(select(effects.c.method, effects.c.result).where(effects.c.key == key)).first()
    if row is None:
        return None
    if row.method != method:
        raise ValueError(f"idempotency key {key!r} was already used by {row.method}, not {method}")
    return {**row.result, "replayed": True}


def atomic(
    engine: Engine, *, domain: str, method: str, key: str | None, apply: Callable[[Connection], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``apply`` in one transaction under the domain lock, once per key."""
    with engine.begin() as conn:
        locked = conn.execute(select(meta.c.version).where(meta.c.name == domain).with_for_update()).first()
        if locked is None:
            raise NotFoundError("the world is empty: run `agentmesh world init`")
        if key is not None and (done := stored_effect(conn, key, method)) is not None:
            return done
        result = apply(conn)
        conn.execute(update(meta).where(meta.c.name == domain).values(version=meta.c.version + 1))
        if key is not None:
            conn.execute(insert(effects).values(key=key, method=method, result=result, created=utcnow()))
        return result
