"""Agent steps on other machines: Prefect 3 task workers, one routing key per role.

    # on the machine that suits the analyst (near its data, or its GPU's model server):
    agentmesh worker --role analyst
    # wherever goals run:
    AGENTMESH_REMOTE_ROLES='["analyst"]' agentmesh run "checkout-api p95 is 900 ms; bring it under 300 ms"

The goal's flow run and its node tasks stay where the goal runs. When a role is remote, ``Agent.run`` sends
the step — plain data: run id, role, step key, goal, step-input sections, prompt — as a background task
(``Task.delay``) whose task key names the role, and awaits its result. ``agentmesh worker --role R`` serves
that key (``prefect.task_worker.serve``), rebuilds the run's context from the shared agentmesh database and
runs the ordinary agent step there: the same model journal, gateway, policy and audit, under the same keys,
so a retried or resumed node replays the finished model calls and tool calls wherever it runs. The output
comes back as JSON and is validated against the agent's output schema.

Why task workers and not a distributed task runner (prefect-dask, prefect-ray): those move whole node tasks,
so the goal's flow run would hand its LangGraph config — checkpointer, callbacks, the compiled graph's
internals — to pickling, and a node's retries and timeline would live on another machine's runner. Here
the flow run, node tasks, retries and checkpoints stay put, only JSON crosses machines, and every side
effect still passes the one journal and audit by the same keys. A role maps to a queue by the task key, so
placement is a command-line flag on the machine that suits the role.

The run context places the step: ``build_run_context(delegates=delegates(settings))`` maps each remote role to
``run_step``, and ``Agent.run`` hands such a role's step to it; on the worker, the run context is built with no
delegates, so the step runs there.

Approvals: a step on a worker has no LangGraph context, so its gateway raises ``ApprovalPause`` there
instead of calling ``interrupt()``; the worker returns ``{"paused": payload}`` and the node calls
``interrupt(payload)`` itself. On resume the node sends the step again, the worker replays the journal, and
the gateway finds the verdict in the audit.

A worker that dies: each send of a step is recorded (``step_sends``, ``agentmesh.persistence.owner``); the worker
that takes it records itself there and renews a lease while it works. The goal, waiting, reads that record: a send
no worker takes within ``step_timeout_s`` fails the goal (no worker serves the role, or all are busy); a send whose
worker is gone (its lease lapsed, or — on this host — its process no longer exists) is sent again at once, up to
``SENDS`` sends; a live worker's step is waited for within the goal's ``max_seconds``. Sending again repeats no side
effect: the next worker replays the journal and the audit by the same keys. A send the goal stops waiting for is
forgotten, so a worker that takes it late (Prefect's queue keeps it) does nothing. Each step's record names the
worker that ran it (``steps.worker``, ``host:pid``; ``agentmesh runs show``), and the worker logs a line per step.

Storage: ``.delay()`` writes the parameters, and the worker its result, to Prefect's result storage. On one
machine the default (under ``PREFECT_HOME``) works when both processes share ``PREFECT_HOME``; across
machines set ``PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK`` and ``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK``
to a shared block (S3, GCS, or a shared filesystem), and ``AGENTMESH_DATABASE_URL`` to one PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import importlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentmesh.agents.agent import Agent
from agentmesh.agents.context import (
    RunContext,
    StepDelegate,
    StepScope,
    current_run,
    current_step,
    running,
    stepping,
)
from agentmesh.core import exceptions, observe
from agentmesh.core.exceptions import AgentmeshError, BudgetExceeded, RunError
from agentmesh.core.settings import Settings, get_settings
from agentmesh.gateway import ApprovalPause
from agentmesh.gateway.approvals import record_resume
from agentmesh.persistence import audit
from agentmesh.persistence.database import get_engine
from agentmesh.persistence.owner import (
    drop_send,
    renew_step,
    renewing,
    send_state,
    send_step,
    take_step,
    this_process,
)
from agentmesh.prompts import PromptTemplate
from agentmesh.runtime._upstream import prefect_context
from agentmesh.runtime.components import build_run_context

if TYPE_CHECKING:
    from prefect import Task
    from pydantic import BaseModel

__all__ = ["SENDS", "agent_step", "delegates", "keyed_task", "run_step", "step_task", "task_key", "worker_id",
           "worker_settings"]

SENDS = 3
"""How many times a step is sent in all when its workers keep dying (the first send and two more)."""

_POLL_S = 1.0  # how often the goal looks at a send it waits for

_tasks: dict[str, Task[..., Any]] = {}


_settings: dict[tuple[tuple[str, Any], ...], Settings] = {}


def worker_settings(**overrides: Any) -> Settings:
    """A worker's settings: its environment's, with these overrides (a goal's model, a step's dry run) — one object
    per distinct overrides for the process's life, so the components built for it (plug-ins, policy, tools, MCP
    servers' tools) are built once, not for every goal or step."""
    key = tuple(sorted(overrides.items()))
    found = _settings.get(key)
    if found is None:
        found = _settings[key] = get_settings(**overrides)
    return found


def task_key(role: str) -> str:
    """The Prefect task key a role's steps are queued under (what `agentmesh worker --role` subscribes to)."""
    return f"agentmesh-agent-step-{role}"


def worker_id() -> str:
    """This process, as a step's record shows where it ran: ``host:pid``."""
    return this_process()


def delegates(settings: Settings) -> dict[str, StepDelegate]:
    """The roles whose steps a run sends to task workers (``settings.remote_roles``), each to ``run_step``."""
    return {role: run_step for role in settings.remote_roles}


def step_task(role: str) -> Task[..., Any]:
    """The background task carrying one role's steps; the same object shape on the sending and serving side."""
    found = _tasks.get(role)
    if found is None:
        found = _tasks[role] = keyed_task(agent_step, name=f"agent-step-{role}", key=task_key(role),
                                          tags=["agentmesh", role, "remote"])
    return found


def keyed_task(fn: Any, *, name: str, key: str, tags: list[str]) -> Task[..., Any]:
    """A background task (``.delay()`` sends it, a task worker serves it) under a fixed task key."""
    from prefect import Task

    class _Keyed(Task):  # type: ignore[type-arg]
        # Prefect derives a task's key from its function's name and code, whose hash includes the file path
        # (so differs between installs) and which copies made by `with_options` — the task worker makes
        # one — recompute. A task served across machines needs one key everywhere.
        def with_options(self, **kwargs: Any) -> Task[..., Any]:
            copy = super().with_options(**kwargs)
            copy.task_key = self.task_key
            return copy

    # Keyed by the task run: the result is stored for the sender to read, and never served from cache to a
    # later send (a resumed step must not get its earlier "paused" reply; the journal makes a replay cheap).
    task = _Keyed(fn=fn, name=name, tags=tags, retries=0, cache_key_fn=_own_run_key)
    task.task_key = key
    return task


def _own_run_key(context: Any, parameters: Any) -> str:
    return f"agentmesh-step-{context.task_run.id}"


# -- the sending side ------------------------------------------------------------------------------------


async def run_step(agent: Agent, *, goal: str, variables: dict[str, Any] | None,
                   sections: dict[str, Any]) -> BaseModel:
    """Send one agent step to a worker serving its role; returns the validated output (or pauses the node)."""
    from langgraph.types import interrupt

    run = current_run()
    scope = current_step()
    scope.agent_runs += 1  # the worker's step takes this number, so its journal key is the one used here
    template = agent.template(run)
    run.prompt_versions[agent.role] = f"{template.version}@{template.sha}"
    request = {
        "run_id": run.run_id, "goal": goal, "graph": run.graph, "role": agent.role,
        "step_key": scope.key, "node": scope.node, "agent_run": scope.agent_runs,
        "approvals": run.approvals, "dry_run": run.settings.dry_run,
        "prompt": _template_data(template), "tools": agent.tools, "model": agent.model,
        "output": f"{agent.output.__module__}:{agent.output.__qualname__}",
        "variables": variables or {}, "sections": sections, "owner": run.owner,
    }
    while True:
        reply = await _send(run, agent.role, request)
        if "error" in reply:
            raise _error(reply["error"])
        if "paused" not in reply:
            return agent.output.model_validate(reply["output"])
        payload = reply["paused"]
        answer = interrupt(payload)  # pauses the node on the first pass; on resume, the answer (if any)
        latest = audit.get_call(run.engine, run.run_id, payload["tool_call_id"])
        if latest is not None and latest.approval == "pending":
            record_resume(run.engine, run.run_id, payload["tool_call_id"], run.registry.tools.get(payload["tool"]),
                          payload["args"], answer)
        # Send the step again: the worker replays the journal and finds the verdict (or pauses once more).


async def _send(run: RunContext, role: str, request: dict[str, Any]) -> dict[str, Any]:
    """Send the step to a worker serving ``role`` and wait for its reply: sent again when its worker dies, up to
    ``SENDS`` sends; a ``RunError`` naming the role when no worker takes a send within ``step_timeout_s``."""
    settings, engine = run.settings, run.engine
    give_up = time.monotonic() + settings.max_seconds
    lost: list[str] = []
    while len(lost) < SENDS:
        send_id = await asyncio.to_thread(send_step, engine, run.run_id, request["step_key"])
        try:
            # In a thread of its own: `delay` talks to the API synchronously.
            future = await asyncio.to_thread(contextvars.copy_context().run, _delay, role,
                                             {**request, "send_id": send_id})
            outcome, worker = await _watch(future, engine, send_id, settings.step_timeout_s, give_up)
        finally:
            await asyncio.to_thread(drop_send, engine, send_id)  # a worker taking this send later does nothing
        where = f"task run {future.task_run_id}"
        if outcome == "done":
            return await _reply(role, future)
        if outcome == "waiting":
            await _give_up(future, "Cancelled", "no worker took the step")
            again = f" (sent again after its worker {lost[-1]} died)" if lost else ""
            raise RunError(f"no `agentmesh worker --role {role}` took the {role}'s step within "
                           f"{settings.step_timeout_s:g} s{again} ({where}); start one, raise step_timeout_s if "
                           f"the workers are busy, or drop {role!r} from remote_roles")
        if outcome == "late":
            on = f" on worker {worker}" if worker else ""
            raise RunError(f"the {role}'s step did not finish within the goal's {settings.max_seconds:g} s{on} "
                           f"({where}); raise max_seconds, or look at that worker")
        lost.append(str(worker))
        await _give_up(future, "Crashed", f"its worker {worker} died; the step was sent again")
        run.emit({"type": "remote_step_lost", "agent": role, "node": request["node"], "step_key": request["step_key"],
                  "worker": worker, "sends": len(lost)})
        observe.run_log("the %s's step was lost with its worker %s (%s)", role, worker, where)
    raise RunError(f"the {role}'s step was lost with its worker {SENDS} times ({', '.join(lost)}); see why the "
                   f"`agentmesh worker --role {role}` processes die (their logs, memory), then `agentmesh runs resume`")


def _delay(role: str, request: dict[str, Any]) -> Any:
    from prefect.context import TaskRunContext

    # The background run belongs to the goal's flow run (it shows in its timeline), but not to the node's task
    # run: Prefect would ship that context to the worker, and its parameters hold LangGraph's config.
    with prefect_context(TaskRunContext, None):
        return step_task(role).delay(request)


async def _watch(future: Any, engine: Any, send_id: str, step_timeout_s: float,
                 give_up: float) -> tuple[str, str | None]:
    """Wait for one send: ``("done", None)`` once its task run is final; ``("lost", worker)`` when its worker is
    gone; ``("waiting", None)`` when no worker took it within ``step_timeout_s``; ``("late", worker)`` when it is
    not done at ``give_up`` (the goal's wall time)."""
    sent = time.monotonic()
    while True:
        await future.wait_async(timeout=_POLL_S)
        if (await asyncio.to_thread(getattr, future, "state")).is_final():  # not final: a blocking read
            return "done", None
        state, worker = await asyncio.to_thread(send_state, engine, send_id)
        now = time.monotonic()
        if state == "lost" or (state == "waiting" and now - sent > step_timeout_s):
            return state, worker
        if now > give_up:
            return "late", worker


async def _give_up(future: Any, state: str, message: str) -> None:
    """Mark the task run of a send the goal stopped waiting for final (Cancelled, Crashed), so the Prefect UI does
    not show it running forever; best effort — the send's record is what the workers go by."""
    from prefect import states
    from prefect.client.orchestration import get_client

    with contextlib.suppress(Exception):
        async with get_client() as client:
            await client.set_task_run_state(future.task_run_id, getattr(states, state)(message=message), force=True)


async def _reply(role: str, future: Any) -> dict[str, Any]:
    state = future.state
    for attempt in range(50):
        try:
            result = await state.aresult()
            break
        except ValueError as exc:
            # The worker's task engine reports Completed a moment before its transaction writes the result.
            if "does not exist" not in str(exc) or attempt == 49:
                raise
            await asyncio.sleep(0.1)
    if not isinstance(result, dict):
        raise RunError(f"the {role}'s worker returned {type(result).__name__}, not a step result")
    return result


def _template_data(template: Any) -> dict[str, Any]:
    data = {f.name: getattr(template, f.name) for f in dataclasses.fields(template)}
    data["path"] = str(data["path"]) if data.get("path") else None
    return data


def _error(error: dict[str, Any]) -> AgentmeshError:
    cls = getattr(exceptions, error.get("type", ""), None)
    message = f"{error['message']} (on worker {error.get('worker')})"
    if cls is BudgetExceeded:
        return BudgetExceeded(message, budget=error.get("budget") or "unknown")
    if isinstance(cls, type) and issubclass(cls, AgentmeshError):
        return cls(message)
    return RunError(message)


# -- the serving side -------------------------------------------------------------------------------------


async def agent_step(request: dict[str, Any]) -> dict[str, Any]:
    """One agent step on a task worker: the send taken (this worker recorded, its lease renewed while it works),
    the run's context rebuilt from the agentmesh database, then the ordinary step. Returns ``{"output": ...}``,
    ``{"paused": approval}`` or ``{"error": ...}`` (plain JSON)."""
    settings = worker_settings(dry_run=request["dry_run"])
    here, send_id, started = worker_id(), request["send_id"], time.monotonic()
    engine = get_engine(settings.resolved_database_url)
    lease_s = settings.run_lease_s
    _say(request, "received")
    try:
        if not take_step(engine, send_id, here, lease_s, owner=request.get("owner")):
            reply: dict[str, Any] = {"error": {"type": "RunError", "worker": here, "message": "this send of the step "
                                               "is no longer waited for (sent again, or the goal gave up)"}}
        else:
            with renewing(lambda: renew_step(engine, send_id, here, lease_s), lease_s / 3,
                          name=f"agentmesh-step-{send_id[:8]}"):
                reply = await _run_agent(request, settings, here)
    except AgentmeshError as exc:  # sent back as data: the node decides about retries, as for a local step
        reply = {"error": {"type": type(exc).__name__, "message": str(exc), "worker": here,
                           "budget": getattr(exc, "budget", None)}}
    outcome = "paused" if "paused" in reply else "error: " + reply["error"]["message"] if "error" in reply else "done"
    _say(request, f"{outcome} in {time.monotonic() - started:.1f} s")
    return reply


async def _run_agent(request: dict[str, Any], settings: Settings, here: str) -> dict[str, Any]:
    role = request["role"]
    run = build_run_context(settings, run_id=request["run_id"], goal=request["goal"], graph=request["graph"],
                            approvals=request["approvals"], on_worker=True, owner=request.get("owner"))
    scope = StepScope(key=request["step_key"], node=request["node"], agent=role,
                      agent_runs=request["agent_run"] - 1)  # Agent.run counts this run again
    prompt = dict(request["prompt"])
    prompt["path"] = Path(prompt["path"]) if prompt.get("path") else None
    module, _, name = request["output"].partition(":")
    agent = Agent(role=role, prompt=PromptTemplate(**prompt), tools=request["tools"], model=request["model"],
                  output=getattr(importlib.import_module(module), name))
    with running(run), stepping(scope):
        run.emit({"type": "remote_step", "agent": role, "node": scope.node, "step_key": scope.key,
                  "agent_run": request["agent_run"], "worker": here})
        try:
            output = await agent.run(goal=request["goal"], variables=request["variables"], **request["sections"])
        except ApprovalPause as pause:
            return {"paused": pause.payload, "worker": here}
        return {"output": output.model_dump(mode="json"), "worker": here}


def _say(request: dict[str, Any], what: str) -> None:
    """One line per step on the worker's standard error: which run, step and role, and how it went."""
    print(f"{time.strftime('%H:%M:%S')} run {request['run_id'][:8]} step {request['step_key']} ({request['role']}, "
          f"send {request['send_id'][:8]}): {what}", file=sys.stderr, flush=True)
