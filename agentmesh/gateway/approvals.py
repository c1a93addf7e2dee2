"""Approvals: deadlines and edits.

A pending approval older than the policy's ``approval_timeout_s`` gets the policy's ``approval_default`` (recorded in
the audit as the policy's verdict). An approver may approve a call with changed arguments ("yes, but 5 replicas"):
``edit_arguments`` applies and checks the change; the gateway then admits the edited call again — validation, role,
scope, the domain's limits — before it runs, and the audit keeps both the model's arguments and the edit.

    edit_arguments(scale_service, {"service": "checkout-api", "replicas": 8}, {"replicas": 5})
    # -> {"service": "checkout-api", "replicas": 5}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import Engine

from agentmesh.core.exceptions import UserError
from agentmesh.core.toml_lines import close_match
from agentmesh.gateway.policy import Policy
from agentmesh.persistence import audit
from agentmesh.persistence.database import utcnow

if TYPE_CHECKING:
    from agentmesh.tools import Tool

__all__ = ["edit_arguments", "expire_approvals", "record_resume", "validation_message"]


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


def edit_arguments(tool: Tool, asked: Any, changes: Any) -> dict[str, Any]:
    """The call's arguments with an approver's ``changes`` applied: the arguments named are replaced, the others kept
    as the model asked. ``UserError`` (one line) when the changes are not a JSON object, name an argument the tool
    does not take, or leave arguments the tool would not accept."""
    if not isinstance(changes, Mapping):
        raise UserError(f"the edited arguments of {tool.name} must be a JSON object of the arguments to change, "
                        f"e.g. {{\"{next(iter(tool.args_model.model_fields), 'name')}\": ...}}, "
                        f"not {type(changes).__name__}")
    takes = list(tool.args_model.model_fields)
    if tool.args_model.model_config.get("extra") == "forbid":
        unknown = next((str(k) for k in changes if k not in takes), None)
        if unknown is not None:
            raise UserError(f"{tool.name} takes no argument {unknown!r}{close_match(unknown, takes)}; "
                            f"its arguments: {', '.join(takes) or 'none'}")
    edited = {**(asked if isinstance(asked, Mapping) else {}), **changes}
    try:
        tool.args_model.model_validate(edited)
    except ValidationError as exc:
        raise UserError(f"the edited arguments of {tool.name} are {validation_message(exc)}") from None
    return edited


def record_resume(engine: Engine, run_id: str, call_id: str, tool: Tool | None, asked: Any, answer: Any) -> bool:
    """Record the verdict a LangGraph resume value carries, as the approver ``resume``: ``True``/``False``,
    ``{"approved": bool}``, or ``{"approved": True, "args": {...}}`` — approved with these arguments changed
    (``Command(resume=...)``). False when it carries none. An edit that cannot be applied rejects the call, saying why:
    nobody approved the call as the model asked for it."""
    approved = answer.get("approved") if isinstance(answer, Mapping) else answer
    if approved is None:
        return False
    changes = answer.get("args") if isinstance(answer, Mapping) and approved else None
    edited, reason = None, None
    if changes is not None:
        try:
            if tool is None:
                raise UserError("the tool is no longer registered")
            edited = edit_arguments(tool, asked, changes)
        except UserError as exc:
            approved, reason = False, f"the edit could not be applied: {exc}"
    audit.record_approval(engine, run_id, call_id, approved=bool(approved), approver="resume", reason=reason,
                          edited_args=edited if edited != asked else None)
    return True


def validation_message(exc: ValidationError) -> str:
    """``invalid arguments — replicas: Input should be a valid integer; …`` (the first five problems)."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "invalid arguments — " + "; ".join(parts)
