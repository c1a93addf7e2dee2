"""Approvals: a person's verdict on a run's pending tool calls, then the run resumed from any process.

The verdict is recorded in the audit; the run then resumes from its checkpoint in whatever process asks, and the
paused node replays to the call, which now finds its verdict (see ``agentmesh.gateway``). An approval may change the
call's arguments (``args``: the arguments to change, the rest kept); the gateway admits the edited call again before
it runs, and the audit keeps the model's arguments, the edit and who made it.

    await aapprove(run_id, "call_3f2", approver="alice", args={"replicas": 5})   # yes, but 5 replicas
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

from agentmesh.core.exceptions import PolicyViolation, RunOwned, UserError
from agentmesh.core.settings import Settings, get_settings
from agentmesh.gateway.approvals import edit_arguments, expire_approvals
from agentmesh.persistence import audit
from agentmesh.persistence.owner import owner_alive, refusal
from agentmesh.persistence.runs import get_run, run_result
from agentmesh.runtime.components import EventSink, components
from agentmesh.runtime.goal import LANGGRAPH_SERVER
from agentmesh.runtime.run import aresume_run

__all__ = ["aapprove"]


async def aapprove(run_id: str, call_id: str | None = None, *, approved: bool = True, approver: str,
                   reason: str | None = None, args: Mapping[str, Any] | None = None,
                   settings: Settings | None = None, resume: bool = True,
                   approvals: str | None = None, on_event: EventSink | None = None,
                   chat_model: BaseChatModel | None = None, force: bool = False) -> dict[str, Any]:
    """Record a verdict on a run's pending calls (one, or all), then resume the run from any process.

    Under the policy's ``four_eyes`` the identity that started the run may reject its calls but not approve them:
    ``PolicyViolation`` (nothing is recorded, the calls keep waiting for someone else). ``args`` approves one call
    with these arguments changed; arguments the tool would not accept are a ``UserError`` and nothing is recorded.
    A run a live process owns is ``RunOwned`` and nothing is recorded, unless ``force`` (the resume takes it over).
    """
    if args is not None and not approved:
        raise UserError("a rejection takes no arguments: edit a call's arguments when you approve it")
    settings = settings or get_settings()
    parts = components(settings)
    engine = parts.engine
    record = get_run(engine, run_id)
    run_id = record["run_id"]
    if not force and owner_alive(record):
        raise RunOwned(refusal(record))
    expired = expire_approvals(engine, parts.policy, run_id)
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
    if approved and record.get("started_by") and approver == record["started_by"]:
        own = [c for c in pending if parts.policy.four_eyes_for(c.tool, c.risk)]
        if own:
            raise PolicyViolation(f"four eyes: {approver} started run {run_id[:8]} and cannot approve its own "
                                  f"{', '.join(sorted({c.tool for c in own}))}; another approver must")
    edited = None
    if args is not None:
        if len(pending) > 1:
            raise UserError(f"run {run_id} has {len(pending)} calls waiting for approval: name the one whose arguments "
                            f"you edit ({', '.join(c.tool_call_id for c in pending)})")
        call = pending[0]
        tool = parts.registry.tools.get(call.tool)
        if tool is None:
            raise UserError(f"tool {call.tool!r} of call {call.tool_call_id} is no longer registered: its arguments "
                            "cannot be checked, so they cannot be edited")
        edited = edit_arguments(tool, call.args, args)
        if edited == call.args:
            edited = None  # the same arguments: a plain approval
    for call in pending:
        audit.record_approval(engine, run_id, call.tool_call_id, approved=approved, approver=approver, reason=reason,
                              edited_args=edited)
    if not resume or record.get("deployment") == LANGGRAPH_SERVER:
        # A LangGraph server's run is resumed on its thread there; the paused call reads this verdict when it is.
        return run_result(engine, run_id)
    return await aresume_run(run_id, settings=settings, approvals=approvals, on_event=on_event, chat_model=chat_model,
                             force=force)
