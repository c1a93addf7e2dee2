"""Approvals: a person's verdict on a run's pending tool calls, and the policy's deadline for one.

The verdict is recorded in the audit; the run then resumes from its checkpoint in whatever process asks, and the
paused node replays to the call, which now finds its verdict (see ``agentmesh.gateway``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from . import store
from .exceptions import UserError
from .runtime import EventSink, aresume_run, components
from .settings import Settings, get_settings

__all__ = ["aapprove", "expire_approvals"]


async def aapprove(run_id: str, call_id: str | None = None, *, approved: bool = True, approver: str,
                   reason: str | None = None, settings: Settings | None = None, resume: bool = True,
                   approvals: str | None = None, on_event: EventSink | None = None,
                   chat_model: BaseChatModel | None = None) -> dict[str, Any]:
    """Record a verdict on a run's pending calls (one, or all), then resume the run from any process."""
    from . import audit
    from .runs import run_result

    settings = settings or get_settings()
    engine = store.get_engine(settings.resolved_database_url)
    run_id = store.get_run(engine, run_id)["run_id"]
    expired = expire_approvals(settings, run_id)
    if call_id is not None and any(c.endswith(call_id) for c in expired):
        raise UserError(f"the approval deadline of call {call_id} had passed; the policy's default outcome was "
                        f"applied — `agentmesh runs resume {run_id}` continues the run")
    pending = audit.pending_approvals(engine, run_id)
    if call_id is not None:
        pending = [c for c in pending if c.tool_call_id == call_id or c.tool_call_id.endswith(call_id)]
        if not pending:
            raise UserError(f"run {run_id} has no call {call_id!r} waiting for approval; `agentmesh runs show {run_id}`")
    if not pending:
        raise UserError(f"run {run_id} has nothing waiting for approval")
    for call in pending:
        audit.record_approval(engine, run_id, call.tool_call_id, approved=approved, approver=approver, reason=reason)
    if not resume:
        return run_result(engine, run_id)
    return await aresume_run(run_id, settings=settings, approvals=approvals, on_event=on_event, chat_model=chat_model)


def expire_approvals(settings: Settings, run_id: str) -> list[str]:
    """Apply the policy's default outcome to approvals past their deadline; returns their call ids."""
    from datetime import timedelta

    from . import audit

    policy = components(settings).policy
    if not policy.approval_timeout_s:
        return []
    engine = store.get_engine(settings.resolved_database_url)
    deadline = store.utcnow() - timedelta(seconds=policy.approval_timeout_s)
    expired = []
    for call in audit.pending_approvals(engine, run_id):
        started = call.started if call.started.tzinfo else call.started.replace(tzinfo=deadline.tzinfo)
        if started < deadline:
            audit.record_approval(engine, run_id, call.tool_call_id, approved=policy.approval_default == "approve",
                                  approver="policy (approval deadline passed)",
                                  reason=f"no verdict within {policy.approval_timeout_s:g} s")
            expired.append(call.tool_call_id)
    return expired
