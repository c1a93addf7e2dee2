"""The audit: one record per attempted tool call, written before the side effect and completed after.

A record's key is ``(run_id, tool_call_id)`` — the call's idempotency key — so a retried or resumed step
that reaches the same call finds its record and reuses the result instead of acting twice.

Statuses: ``running`` (written, not finished: a crash happened here), ``ok``, ``refused`` (permissions or
policy), ``invalid`` (arguments failed validation), ``failed`` (the tool raised or timed out),
``pending_approval``, ``rejected`` (a person or the approval mode said no), ``dry_run``.

``args`` are the arguments the model asked for, as written before anything ran; when an approver changed them,
``edited_args`` holds what the call was approved (and made) with, and ``approver`` names who changed them.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from agentmesh.persistence.database import utcnow
from agentmesh.persistence.owner import check_owner
from agentmesh.persistence.tables import tool_calls

__all__ = ["FINAL", "ToolCallRecord", "begin_call", "finish_call", "get_call", "list_calls", "pending_approvals",
           "record_approval"]

FINAL = frozenset({"ok", "refused", "invalid", "failed", "rejected", "dry_run"})


class ToolCallRecord(BaseModel):
    """One attempted tool call, as `agentmesh runs audit --json` shows it."""

    run_id: str
    tool_call_id: str
    step_key: str | None = None
    node: str | None = None
    agent: str | None = None
    tool: str
    risk: str | None = None
    args: Any = None
    status: str
    reason: str | None = None
    result: Any = None
    dry_run: bool = False
    started: datetime
    ended: datetime | None = None
    approval: str | None = None
    approver: str | None = None
    approval_reason: str | None = None
    approved_at: datetime | None = None
    edited_args: Any = None
    """The arguments the approver changed the call to; None when it was approved (or not) as the model asked."""
    scope: str | None = None
    """Why the call was outside the goal's scope, when it was."""

    @property
    def effective_args(self) -> Any:
        """The arguments the call was made with: the approver's edit when there was one, else the model's."""
        return self.edited_args if self.edited_args is not None else self.args


# Built once (each call's record is written twice): the values come as parameters.
_BEGIN = insert(tool_calls)
_FINISH = update(tool_calls).where(tool_calls.c.run_id == bindparam("b_run_id"),
                                   tool_calls.c.tool_call_id == bindparam("b_call_id"))


def get_call(bind: Engine | Connection, run_id: str, tool_call_id: str) -> ToolCallRecord | None:
    """A call's record; on a connection, read in the caller's transaction (the gateway's, before it writes one)."""
    with bind.connect() if isinstance(bind, Engine) else contextlib.nullcontext(bind) as conn:
        row = conn.execute(
            select(tool_calls).where(tool_calls.c.run_id == run_id, tool_calls.c.tool_call_id == tool_call_id)
        ).mappings().first()
    return ToolCallRecord.model_validate(dict(row)) if row else None


def _writing(bind: Engine | Connection) -> contextlib.AbstractContextManager[Connection]:
    """A transaction of its own on an engine; on a connection, the caller's (to commit an event with the record)."""
    return bind.begin() if isinstance(bind, Engine) else contextlib.nullcontext(bind)


def begin_call(bind: Engine | Connection, *, if_owner: str | None = None, **values: Any) -> None:
    """Write a call's record; with ``if_owner``, only while that process owns the run (``RunFenced``)."""
    with _writing(bind) as conn:
        check_owner(conn, values["run_id"], if_owner)
        conn.execute(_BEGIN, {"started": utcnow(), **values})


def finish_call(bind: Engine | Connection, run_id: str, tool_call_id: str, *, if_owner: str | None = None,
                **values: Any) -> None:
    values.setdefault("ended", utcnow())
    with _writing(bind) as conn:
        check_owner(conn, run_id, if_owner)
        conn.execute(_FINISH, {"b_run_id": run_id, "b_call_id": tool_call_id, **values})


def list_calls(engine: Engine, run_id: str) -> list[ToolCallRecord]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(tool_calls).where(tool_calls.c.run_id == run_id).order_by(tool_calls.c.started)
        ).mappings()
        return [ToolCallRecord.model_validate(dict(r)) for r in rows]


def pending_approvals(engine: Engine, run_id: str) -> list[ToolCallRecord]:
    return [c for c in list_calls(engine, run_id) if c.approval == "pending"]


def record_approval(engine: Engine, run_id: str, tool_call_id: str, *, approved: bool, approver: str,
                    reason: str | None = None, edited_args: dict[str, Any] | None = None,
                    if_owner: str | None = None) -> None:
    """A verdict on a pending call; ``edited_args``: the approver approved it with these arguments instead."""
    finish_call(
        engine, run_id, tool_call_id, if_owner=if_owner,
        approval="approved" if approved else "rejected",
        approver=approver, approval_reason=reason, approved_at=utcnow(), ended=None, edited_args=edited_args,
    )
