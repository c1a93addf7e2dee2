"""The tool gateway: every tool call, built-in or user-defined, passes here and only here.

    validate arguments → role permission → scope → approval → idempotency → execute with a timeout → audit

The scope guard (``agentmesh.gateway.scope``) checks a write's target against what the goal refers to, as
resolved once for the run (at its start, or — when the domain's state did not exist yet — before the first write
that names a target) and recorded; the policy's ``[scope]`` table says whether a call outside it is refused, waits
for a person, or is allowed. ``--approvals auto`` approves neither an out-of-scope call nor one under ``four_eyes``:
a safeguard a run's own flag could switch off would not be one.

A person may approve a call with edited arguments (``agentmesh.gateway.approvals.edit_arguments``): the edited call
is admitted again — validation, role, scope — and meets the domain's limits like any call; the audit keeps the
model's arguments and the edit, and the model's ``ToolMessage`` says who changed what.

The audit record is written before the side effect and completed after it. A refused, invalid, rejected
or failed call is audited and explained to the model in its ``ToolMessage``; it never crashes the run.
A domain's own limits (the operations world's replica ranges, cost ceiling, refund cap) are checked by the
domain inside the same transaction as the change, so two goals cannot both pass a check and then both act.

    gateway = run.gateway                    # one per run, built with the run's context
    content = await gateway.call({"id": "call_1", "name": "scale_service", "args": {...}},
                                 agent="optimizer", step_key="optimizer:3f2", node="optimizer", offered={...})
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from agentmesh.core import observe
from agentmesh.core.exceptions import AgentmeshError, NotFoundError, PolicyViolation, RunFenced, ToolError
from agentmesh.core.messages import tool_result
from agentmesh.gateway.approvals import record_resume, validation_message
from agentmesh.gateway.policy import Policy
from agentmesh.gateway.scope import Scope
from agentmesh.persistence import audit
from agentmesh.tools import Tool, ToolContext, ToolRegistry

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from agentmesh.core.resources import Resources
    from agentmesh.core.settings import Settings

__all__ = ["ApprovalPause", "Gateway"]

_MAX_RESULT_CHARS = 12_000
_NOT_DONE = frozenset({"refused", "invalid", "rejected", "failed"})


@dataclass(kw_only=True)
class Gateway:
    """The gateway of one run: its tools, policy and approval mode, and where its records go."""

    run_id: str
    """The run every call belongs to (half of each call's idempotency key)."""
    settings: Settings
    """Dry run and the default tool timeout."""
    engine: Engine
    """The database the audit lives in."""
    registry: ToolRegistry
    """The tools that exist."""
    policy: Policy
    """Roles, approvals and concurrency."""
    resources: Resources
    """What tools may ask for (``ToolContext.resource``)."""
    approvals: str = "wait"
    """wait: pause for a person; auto: approve what policy allows; deny: reject."""
    emit: Callable[..., None] = lambda event, conn=None: None
    """The run's event sink (``emit(event, conn)`` stores the event in the caller's transaction)."""
    needs: Mapping[str, tuple[type, ...]] = field(default_factory=dict)
    """Tool name -> resources to build before its first call's timeout starts (a plug-in's state: seconds to open)."""
    pause_by_raising: bool = False
    """A step with no LangGraph context to ``interrupt()`` (on a task worker, ``agentmesh.runtime.remote``)
    raises ``ApprovalPause`` instead, and the node that sent the step pauses for it."""
    scope: Scope | None = dataclasses.field(default_factory=Scope)
    """What the goal refers to (recorded with the run); writes on other entities are outside it. None until it is
    resolved, by ``resolve_scope``, before the first write that names a target."""
    resolve_scope: Callable[[], Scope | None] | None = None
    """Resolves and records the scope when it was left unresolved at the run's start."""
    owner: str | None = None
    """The process owning the run (``agentmesh.persistence.owner``): each audit write checks it still does."""

    async def call(self, call: Mapping[str, Any], *, agent: str, step_key: str, node: str, offered: set[str]) -> str:
        """Execute one model tool call through the gateway; returns the ToolMessage content (JSON). Traced as an
        ``execute_tool`` span and logged on the Prefect run (tool, status, reason; never the arguments)."""
        name = str(call.get("name") or "")
        with observe.span(f"execute_tool {name}", {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": str(call.get("id") or ""), "gen_ai.agent.name": agent, "agentmesh.node": node,
        }) as current:
            content = await self._call(call, agent=agent, step_key=step_key, node=node, offered=offered)
            if observe.capture_content():
                secret = self._secret()
                observe.set_attributes(current, {
                    "gen_ai.tool.call.arguments": observe.redact(json.dumps(call.get("args"), default=str), secret),
                    "gen_ai.tool.call.result": observe.redact(content[:4000], secret)})
        return content

    def _secret(self) -> str | None:
        key = self.settings.openai_api_key
        return key.get_secret_value() if key is not None else None

    def _observe(self, agent: str, name: str, status: str, reason: str | None) -> None:
        """The outcome of a call on its span and in the Prefect run's log."""
        reason = observe.redact(reason, self._secret())[:500] if reason else None
        observe.run_log("%s → %s: %s%s", agent, name, status, f" — {reason}" if reason else "")
        current = observe.current_span()
        observe.set_attributes(current, {"agentmesh.tool.status": status, "agentmesh.tool.reason": reason,
                                         "error.type": status if status in _NOT_DONE else None})
        if status in _NOT_DONE and current is not None:
            from opentelemetry.trace import Status, StatusCode

            current.set_status(Status(StatusCode.ERROR, reason or status))

    async def _call(self, call: Mapping[str, Any], *, agent: str, step_key: str, node: str, offered: set[str]) -> str:
        call_id = str(call.get("id") or "")
        name = str(call.get("name") or "")
        args = call.get("args")
        tool = self.registry.tools.get(name)
        base = dict(run_id=self.run_id, tool_call_id=call_id, step_key=step_key, node=node, agent=agent, tool=name)
        with self.engine.begin() as conn:  # the lookup, and for a new call its record and event: one commit
            recorded = audit.get_call(conn, self.run_id, call_id)
            if recorded is None:
                audit.begin_call(conn, **base, risk=tool.risk if tool else None, args=_jsonable(args),
                                 status="running", dry_run=self.settings.dry_run, if_owner=self.owner)
                self.emit({"type": "tool_call", "agent": agent, "tool": name, "args": args, "tool_call_id": call_id},
                          conn)
        if recorded is not None and recorded.status in audit.FINAL:
            observe.set_attributes(observe.current_span(), {"agentmesh.tool.status": recorded.status,
                                                            "agentmesh.tool.replayed": True})
            return _replay(recorded)

        edit: dict[str, Any] | None = None  # {"by", "args"} once a person approved the call with other arguments

        def finish(status: str, *, reason: str | None = None, result: Any = None) -> str:
            if edit is not None and reason:
                reason = f"as edited by {edit['by']}: {reason}"
            with self.engine.begin() as conn:
                audit.finish_call(conn, self.run_id, call_id, status=status, reason=reason, result=_jsonable(result),
                                  if_owner=self.owner)
                self.emit({"type": "tool_result", "agent": agent, "tool": name, "tool_call_id": call_id,
                           "status": status, "reason": reason, **({"edited": edit} if edit else {})}, conn)
            self._observe(agent, name, status, reason)
            return tool_result(status, result=result, error=reason, edited=edit)

        if tool is None or name not in offered:
            known = ", ".join(sorted(offered)) or "none"
            what = "no such tool" if tool is None else f"the {agent} is not offered {name!r}"
            return finish("refused", reason=f"{what}; your tools are: {known}")
        try:
            parsed, outside = self._admit(tool, args, agent, call_id, error=call.get("error"))
        except _NotAdmitted as stop:
            return finish(stop.status, reason=stop.reason)
        rule = self.policy.scope.rule(name) if outside else "allow"
        needs_approval = self.policy.needs_approval(tool) or rule == "approve"
        if self.settings.dry_run and tool.risk != "read":
            # Before the approval: a dry run never waits for a person to approve what it will not do.
            reason = "dry run: not executed" + (" (it would need approval)" if needs_approval else "")
            return finish("dry_run", reason=reason, result={"would_call": name, "args": args})

        if needs_approval:
            guarded = outside if rule == "approve" else None
            if self.policy.four_eyes_for(name, tool.risk):
                guarded = "; ".join(filter(None, [guarded, f"four eyes: {name} needs a second person's approval"]))
            verdict = self._approval(call_id, name, parsed.model_dump(mode="json"), agent, recorded, guarded=guarded)
            if verdict is not None:
                return finish("rejected", reason=verdict)
            approved = audit.get_call(self.engine, self.run_id, call_id)
            if approved is not None and approved.edited_args is not None:
                # The approver changed the arguments: the edited call is admitted again, as if the model had asked
                # for it — an approval vouches for the call a person saw, not for whatever an edit makes of it.
                edit = {"by": approved.approver, "args": approved.edited_args}
                try:
                    parsed, moved = self._admit(tool, approved.edited_args, agent, call_id)
                except _NotAdmitted as stop:
                    return finish(stop.status, reason=stop.reason)
                if moved and moved != outside and self.policy.scope.rule(name) != "allow":
                    return finish("refused", reason=f"{moved}, and nobody was asked to approve that")

        context = ToolContext(run_id=self.run_id, tool_call_id=call_id, agent=agent, settings=self.settings,
                              resources=self.resources)
        kwargs = dict(parsed)
        if tool.context_param:
            kwargs[tool.context_param] = context
        timeout = tool.timeout_s or self.settings.tool_timeout_s
        unbuilt = [kind for kind in self.needs.get(name, ()) if not self.resources.built(kind)]
        if unbuilt:  # opening a domain's state is not the tool's time
            try:
                await asyncio.to_thread(lambda: [self.resources.get(kind) for kind in unbuilt])
            except Exception as exc:
                return finish("failed", reason=f"{name} could not start: {type(exc).__name__}: {_one_line(exc)}")

        async def attempt() -> tuple[str, str | None, Any]:
            try:
                async with await self._slot(name):  # waiting for a slot is not the tool's time
                    result = await asyncio.wait_for(_execute(tool, kwargs), timeout)
            except TimeoutError:
                return "failed", f"{name} did not finish within {timeout:g} s", None
            except PolicyViolation as exc:
                return "refused", str(exc), None
            except (NotFoundError, ValueError, AgentmeshError) as exc:
                return "failed", _one_line(exc), None
            except Exception as exc:  # a user's tool may raise anything; the model hears about it, the run goes on
                return "failed", f"{name} raised {type(exc).__name__}: {_one_line(exc)}", None
            try:
                return "ok", None, _compact(result)
            except ToolError as exc:
                return "failed", str(exc), None

        outcome = asyncio.ensure_future(attempt())
        try:
            status, why, result = await asyncio.shield(outcome)
        except asyncio.CancelledError:
            # The step was cancelled while the tool ran (a parallel step failed, the goal ran out of budget). The
            # tool goes on in its thread regardless; when it ends — within its timeout — its outcome is audited,
            # or the record would stay `running` as if the call never finished. A callback, not an await: a
            # cancelled scope would cancel the await too.
            def audit_outcome(done: asyncio.Future[tuple[str, str | None, Any]]) -> None:
                if not done.cancelled() and done.exception() is None:
                    status, reason, result = done.result()
                    with contextlib.suppress(RunFenced):  # another process owns the run now: its audit stays
                        finish(status, reason=reason, result=result)

            outcome.add_done_callback(audit_outcome)
            raise
        return finish(status, reason=why, result=result)

    def _admit(self, tool: Tool, args: Any, agent: str, call_id: str, *,
               error: Any = None) -> tuple[BaseModel, str | None]:
        """Validate a call's arguments, check the agent's role and the scope guard: the parsed arguments and why the
        call is outside the goal's scope (None when inside), or ``_NotAdmitted`` with the audited status and reason.
        """
        if not isinstance(args, dict):
            raise _NotAdmitted("invalid", str(error or "arguments must be a JSON object"))
        try:
            parsed = tool.args_model.model_validate(args)
        except ValidationError as exc:
            raise _NotAdmitted("invalid", validation_message(exc)) from None
        if agent not in self.policy.allowed_roles(tool):
            raise _NotAdmitted("refused", f"policy does not let the {agent} call {tool.name}")
        outside = self._outside(tool, parsed.model_dump(mode="json"))
        if outside:
            with self.engine.begin() as conn:
                audit.finish_call(conn, self.run_id, call_id, scope=outside, ended=None, if_owner=self.owner)
            if self.policy.scope.rule(tool.name) == "refuse":
                raise _NotAdmitted("refused", outside)
        return parsed, outside

    def _outside(self, tool: Tool, args: dict[str, Any]) -> str | None:
        """Why a write or destructive call is outside the goal's scope; None when inside or not checked."""
        target = self.policy.target_of(tool)
        if tool.risk == "read" or target is None or args.get(target[0]) is None:
            return None
        argument, kind = target
        if self.scope is None:
            self.scope = (self.resolve_scope() if self.resolve_scope is not None else None) or Scope()
        if self.scope.covers(kind, args[argument]):
            return None
        return f"{kind} {args[argument]} is outside the goal's scope (scope: {self.scope.describe()})"

    def _approval(self, call_id: str, name: str, args: dict[str, Any], agent: str,
                  recorded: audit.ToolCallRecord | None, *, guarded: str | None = None) -> str | None:
        """None when approved; otherwise the rejection reason. Pauses the run (interrupt) while waiting.
        ``guarded``: why only a person may approve this call (outside the scope, four eyes) — not ``auto``."""
        if recorded is not None and recorded.approval == "approved":
            return None
        if recorded is not None and recorded.approval == "rejected":
            return f"rejected by {recorded.approver}" + (f": {recorded.approval_reason}" if recorded.approval_reason else "")
        if self.approvals == "auto" and guarded:
            reason = f"{guarded}: only a person can approve it, not --approvals auto"
            audit.record_approval(self.engine, self.run_id, call_id, approved=False, approver="auto (--approvals auto)",
                                  reason=reason, if_owner=self.owner)
            return reason
        if self.approvals == "auto":
            audit.record_approval(self.engine, self.run_id, call_id, approved=True, approver="auto (--approvals auto)",
                                  if_owner=self.owner)
            return None
        if self.approvals == "deny":
            audit.record_approval(self.engine, self.run_id, call_id, approved=False, approver="auto (--approvals deny)",
                                  if_owner=self.owner)
            return "rejected by --approvals deny"
        with self.engine.begin() as conn:
            audit.finish_call(conn, self.run_id, call_id, status="pending_approval", approval="pending", ended=None,
                              if_owner=self.owner)
            self.emit({"type": "approval_requested", "tool_call_id": call_id, "tool": name, "args": args,
                       "agent": agent, "reason": guarded}, conn)
        self._observe(agent, name, "pending_approval", guarded)
        # The node stops here; `agentmesh approve` records the verdict and resumes the graph, the node replays
        # from the journal and reaches this call again, now with a recorded verdict.
        while True:
            payload = {"type": "approval", "tool_call_id": call_id, "tool": name, "args": args, "agent": agent}
            if self.pause_by_raising:
                raise ApprovalPause(payload)
            answer = interrupt(payload)
            latest = audit.get_call(self.engine, self.run_id, call_id)
            if latest is not None and latest.approval in ("approved", "rejected"):
                return self._approval(call_id, name, args, agent, latest, guarded=guarded)
            approved = answer.get("approved") if isinstance(answer, dict) else answer
            if approved and guarded:
                continue  # an anonymous resume cannot approve what needs a person named in the audit
            if record_resume(self.engine, self.run_id, call_id, self.registry.tools.get(name), args, answer):
                return self._approval(call_id, name, args, agent, audit.get_call(self.engine, self.run_id, call_id),
                                      guarded=guarded)
            # Resumed with no verdict anywhere (`agentmesh runs resume` on a waiting run): nobody decided, so
            # the call keeps waiting — the next interrupt() pauses the run again.

    async def _slot(self, name: str) -> contextlib.AbstractAsyncContextManager[Any]:
        """A slot of the tool's Prefect global concurrency limit, when the policy sets one (on the Prefect server
        the run context's factory configured)."""
        limit = self.policy.concurrency.get(name)
        if not limit:
            return contextlib.nullcontext()
        from prefect.client.orchestration import get_client
        from prefect.concurrency.asyncio import concurrency

        key = f"agentmesh-tool-{name}"
        if (key, limit) not in _limits_ready:
            from prefect.exceptions import ObjectAlreadyExists

            async with get_client() as client:
                with contextlib.suppress(ObjectAlreadyExists):  # another goal created it a moment ago
                    await client.upsert_global_concurrency_limit_by_name(key, limit)
            _limits_ready.add((key, limit))
        return concurrency(key, occupy=1, strict=True)


_limits_ready: set[tuple[str, int]] = set()


class _NotAdmitted(Exception):  # noqa: N818  (a verdict on a call, not an error)
    """A call the gateway does not run: its audited status (``invalid``, ``refused``) and the reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class ApprovalPause(Exception):  # noqa: N818  (a control-flow signal, not an error)
    """A call waits for approval in a step that cannot interrupt() itself; ``payload`` is the interrupt's."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["tool_call_id"])
        self.payload = payload


async def _execute(tool: Tool, kwargs: dict[str, Any]) -> Any:
    if tool.is_async:
        return await tool.function(**kwargs)
    # A sync tool runs in a daemon thread of its own, not the loop's default executor: a hung tool keeps its
    # thread, but the call ends at the timeout and the run goes on — and `asyncio.run` does not wait for the
    # thread at exit (it joins the default executor's threads, so a hang there would hold the run's return).
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: Any, error: BaseException | None) -> None:
        if not done.done():
            if error is None:
                done.set_result(outcome)
            else:
                done.set_exception(error)

    def work() -> None:
        try:
            outcome, error = context.run(tool.function, **kwargs), None
        except BaseException as exc:  # delivered to the awaiting call, whatever it is
            outcome, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed while the tool ran
            loop.call_soon_threadsafe(settle, outcome, error)

    threading.Thread(target=work, name=f"agentmesh-tool-{tool.name}", daemon=True).start()
    return await done


def _replay(recorded: audit.ToolCallRecord) -> str:
    edited = {"by": recorded.approver, "args": recorded.edited_args} if recorded.edited_args is not None else None
    return tool_result(recorded.status, result=recorded.result, error=recorded.reason, edited=edited)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return repr(value)


def _compact(result: Any) -> Any:
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    text = json.dumps(result, default=str)
    if len(text) > _MAX_RESULT_CHARS:
        raise ToolError(f"result of {len(text)} characters is too large for a model; summarise it in the tool")
    return json.loads(text)
