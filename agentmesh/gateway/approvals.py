"""Approval deadlines: a pending approval older than the policy's ``approval_timeout_s`` gets the policy's
``approval_default`` (recorded in the audit as the policy's verdict)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from agentmesh.gateway.policy import Policy
from agentmesh.persistence import audit
from agentmesh.persistence.database import utcnow

__all__ = ["expire_approvals"]


def expire_approvals(engine: Engine, policy: Policy, run_id: str) -> list[str]:
    """Apply the policy's default outcome to the run's approvals past their deadline; returns their call ids."""
    if not policy.approval_timeout_s:
        return []
    deadline = utcnow() - timedelta(seconds=policy.approval_timeout_s)
    expired = []
    for call in audit.pending_approvals(engine, run_id):
        started = call.started if call.started.tzinfo else call.started.replace(tzinfo=deadline.tzinfo)
        if started < deadline:
            audit.record_approval(engine, run_id, call.tool_call_id, approved=policy.approval_default == "approve",
                                  approver="policy (approval deadline passed)",
                                  reason=f"no verdict within {policy.approval_timeout_s:g} s")
            expired.append(call.tool_call_id)
    return expired
