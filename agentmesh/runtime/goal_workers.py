"""Goals in worker processes: Prefect task workers serving one task key, ``agentmesh-goal``.

    agentmesh worker --goals                 # a process that runs goals sent to it (repeat on any machine)
    agentmesh serve --processes 2            # the HTTP server, its goals run in 2 such processes it starts
    run_goals(goals, processes=2)            # a batch, in 2 such processes started for it

One interpreter runs one core's worth of Python: a goal's graph, bookkeeping and Prefect client share it. To use
more cores (or machines), the goal itself is sent — plain data: the goal, graph, pre-assigned run id, model,
approvals — as a background task (``Task.delay``) under the task key ``agentmesh-goal``; ``agentmesh worker
--goals`` serves that key (``prefect.task_worker.serve``) and runs the goal there with ``arun_goal``, so its
flow run, node tasks, journal, audit and events are those of any other goal, in the shared agentmesh database.
Prefect hands each sent goal to one worker; each worker runs up to ``--limit`` goals at once in its event loop.

The sender reads the run from the database when its task run ends; progress is the run's stored events
(``agentmesh runs follow``, Server-Sent Events), not live tokens: ``token`` events stay in the worker's process.

Cancelling: a goal's flow run set to Cancelling — ``agentmesh serve``'s cancel, or Prefect's UI — is seen by the
worker running it (one query every ``_POLL_S`` for all its goals) and the goal is cancelled there (recorded
``cancelled``). A worker that dies: its goals' leases lapse; the sender stops waiting with a one-line error, and
``agentmesh runs resume ID`` goes on from the checkpoint.

Storage: as for remote roles (``agentmesh.runtime.remote``): one machine shares ``PREFECT_HOME``; several machines
share a result-storage block, the Prefect API and ``AGENTMESH_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from agentmesh.core import exceptions
from agentmesh.core.exceptions import AgentmeshError, RunError, UserError
from agentmesh.core.settings import Settings, get_settings
from agentmesh.persistence.database import get_engine
from agentmesh.persistence.owner import owner_alive, this_process
from agentmesh.persistence.runs import find_run, run_result

__all__ = ["GOAL_KEY", "arun_goals", "goal_task", "local_workers", "run_goals", "run_on_workers", "serve"]

GOAL_KEY = "agentmesh-goal"
"""The Prefect task key goals sent to worker processes are queued under."""

_POLL_S = 1.0  # how often a worker looks at its goals' flow runs (one query for all)
_WAIT_S = 5.0  # how often a waiting sender looks at its run's owner (each look is a request to Prefect's API too)

_task: Any = None


def goal_task() -> Any:
    """The background task carrying goals (the same object on the sending and the serving side)."""
    global _task
    if _task is None:
        from agentmesh.runtime.remote import keyed_task

        _task = keyed_task(run_goal_here, name="agentmesh-goal", key=GOAL_KEY, tags=["agentmesh", "goal"])
    return _task


def request(goal: str, *, graph: str, settings: Settings, approvals: str | None = None,
            context: list[str] | None = None, run_id: str | None = None, started_by: str | None = None,
            resume_of: str | None = None, force: bool = False) -> dict[str, Any]:
    """A goal (or a resume) as the plain data sent to a worker; the run id is assigned here."""
    return {"goal": goal, "graph": graph, "model": settings.model_name, "approvals": approvals,
            "context": context, "run_id": resume_of or run_id or str(uuid.uuid4()), "started_by": started_by,
            "resume_of": resume_of, "force": force}


async def arun_goals(goals: list[str], *, processes: int = 0, limit: int = 4, graph: str | None = None,
                     settings: Settings | None = None, approvals: str | None = None,
                     started_by: str | None = None) -> list[dict[str, Any]]:
    """Run a batch of goals at once; returns their runs' JSON, in order.

    ``processes=0`` runs them all in this process (one event loop: model calls overlap, Python does not). ``processes=N``
    starts N goal workers on this machine for the batch (``agentmesh worker --goals``, Prefect task workers; see
    this module), each running up to ``limit`` goals at a time, so the batch uses N cores. The workers read their settings from this process's environment, with the settings' home, database and model."""
    from agentmesh.runtime.components import components
    from agentmesh.runtime.graphs import get_graph
    from agentmesh.runtime.prefect import configure_prefect, shared_clients
    from agentmesh.runtime.run import _approvals, _check, _checked, _os_user, arun_goal

    if processes < 0 or limit < 1:
        raise UserError(f"processes must be 0 or more and limit 1 or more, not {processes} and {limit}")
    settings = settings or get_settings()
    goals = [_checked(goal) for goal in goals]  # every goal checked before any starts
    approvals = _approvals(approvals, settings)
    spec = get_graph(graph or settings.graph, settings.graphs_paths)
    if not goals:
        return []
    if not processes:
        return list(await asyncio.gather(*(arun_goal(goal, graph=spec.name, settings=settings, approvals=approvals,
                                                     started_by=started_by) for goal in goals)))
    configure_prefect(settings)  # the local Prefect server up before the workers look for it
    components(settings)
    _check(spec)
    requests = [request(goal, graph=spec.name, settings=settings, approvals=approvals,
                        started_by=started_by or _os_user()) for goal in goals]
    with local_workers(processes, limit=limit, settings=settings):
        async with shared_clients():
            run_ids = await asyncio.gather(*(run_on_workers(r, settings) for r in requests))
    return [run_result(components(settings).engine, run_id) for run_id in run_ids]


def run_goals(goals: list[str], **kwargs: Any) -> list[dict[str, Any]]:
    """Synchronous ``arun_goals``."""
    return asyncio.run(arun_goals(goals, **kwargs))


# -- the sending side ------------------------------------------------------------------------------------


async def run_on_workers(goal_request: dict[str, Any], settings: Settings) -> str:
    """Send one goal to the goal workers and wait until its run ends (or pauses); returns its run id. A
    ``RunError`` when its worker died, or the worker could not start it (the worker's one-line reason)."""
    from agentmesh.runtime._upstream import prefect_context

    def delay() -> Any:
        from prefect.context import TaskRunContext

        with prefect_context(TaskRunContext, None):
            return goal_task().delay(goal_request)

    run_id = goal_request["run_id"]
    future = await asyncio.to_thread(delay)
    engine = get_engine(settings.resolved_database_url)
    try:
        while True:
            await future.wait_async(timeout=_WAIT_S)
            if (await asyncio.to_thread(getattr, future, "state")).is_final():  # not final: a blocking read
                break
            record = await asyncio.to_thread(find_run, engine, run_id)
            if record and record["status"] == "running" and record.get("owner") and not owner_alive(record):
                raise RunError(f"the worker running run {run_id} died; `agentmesh runs resume {run_id}` goes on "
                               "from its checkpoint")
    except asyncio.CancelledError:  # cancelled here: cancelled there, and recorded so before this returns
        await asyncio.shield(_cancel_and_wait(settings, run_id, future))
        raise
    reply = await _reply(future)
    if "error" in reply:
        error = reply["error"]
        cls = getattr(exceptions, error.get("type", ""), None)
        message = f"{error['message']} (on worker {error.get('worker')})"
        raise cls(message) if isinstance(cls, type) and issubclass(cls, AgentmeshError) else RunError(message)
    return run_id


async def _reply(future: Any) -> dict[str, Any]:
    if not future.state.is_completed():
        return {"error": {"type": "RunError", "message": f"its task run ended {future.state.name}",
                          "worker": None}}
    for attempt in range(50):
        try:
            result = await future.state.aresult()
            break
        except ValueError as exc:  # the worker reports Completed a moment before its result is written
            if "does not exist" not in str(exc) or attempt == 49:
                raise
            await asyncio.sleep(0.1)
    return result if isinstance(result, dict) else {"error": {"type": "RunError", "worker": None,
                                                              "message": "the goal worker sent back no result"}}


async def _cancel_and_wait(settings: Settings, run_id: str, future: Any, wait_s: float = 30) -> None:
    await cancel(settings, run_id, future.task_run_id)
    with contextlib.suppress(Exception):
        await future.wait_async(timeout=wait_s)


async def cancel(settings: Settings, run_id: str, task_run_id: Any = None) -> None:
    """Ask the worker running a goal to cancel it: its flow run set to Cancelling (as Prefect's UI does); a goal
    no worker took yet has its task run cancelled, so none will."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Cancelling

    record = find_run(get_engine(settings.resolved_database_url), run_id)
    with contextlib.suppress(Exception):  # best effort: a run that ended meanwhile has nothing to cancel
        async with get_client() as client:
            if record and record.get("flow_run_id"):
                await client.set_flow_run_state(UUID(record["flow_run_id"]), Cancelling(), force=True)
            elif task_run_id is not None:
                await client.set_task_run_state(task_run_id, Cancelled(message="cancelled before it started"),
                                                force=True)


# -- the serving side -------------------------------------------------------------------------------------

_running: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = {}  # run id → its goal, in its loop
_lock = threading.Lock()


async def run_goal_here(goal_request: dict[str, Any]) -> dict[str, Any]:
    """One goal on this worker (``arun_goal``, or ``aresume_run``); returns ``{"run_id", "status", "worker"}`` or
    ``{"error": ...}`` — plain JSON."""
    from agentmesh.runtime.remote import worker_settings
    from agentmesh.runtime.run import aresume_run, arun_goal

    here, run_id, started = this_process(), goal_request["run_id"], time.monotonic()
    settings = worker_settings(model=goal_request["model"])
    _say(run_id, "received")
    if goal_request.get("resume_of"):
        work = aresume_run(run_id, settings=settings, approvals=goal_request["approvals"],
                           force=goal_request["force"])
    else:
        work = arun_goal(goal_request["goal"], graph=goal_request["graph"], settings=settings,
                         approvals=goal_request["approvals"], context=goal_request["context"], run_id=run_id,
                         started_by=goal_request["started_by"])
    from prefect.context import TaskRunContext

    from agentmesh.runtime._upstream import prefect_context

    with prefect_context(TaskRunContext, None):  # the goal's flow run is not a child of this task run
        task = asyncio.ensure_future(work)
    with _lock:
        _running[run_id] = (asyncio.get_running_loop(), task)
    _watch_cancellations(settings)
    try:
        result = await task
        reply: dict[str, Any] = {"run_id": run_id, "status": result["status"], "worker": here}
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # this worker is stopping: its goals are cancelled with it (and recorded so)
        reply = {"run_id": run_id, "status": "cancelled", "worker": here}
    except AgentmeshError as exc:
        reply = {"error": {"type": type(exc).__name__, "message": str(exc), "worker": here}}
    finally:
        with _lock:
            _running.pop(run_id, None)
    _say(run_id, f"{reply.get('status') or 'error: ' + reply['error']['message']} in "
                 f"{time.monotonic() - started:.1f} s")
    return reply


def _watch_cancellations(settings: Settings) -> None:
    """Start (once a process) the thread that cancels this worker's goals whose flow runs are Cancelling."""
    global _watcher
    with _lock:
        if _watcher is not None:
            return
        _watcher = threading.Thread(target=asyncio.run, args=(_cancellations(settings),), daemon=True,
                                    name="agentmesh-goal-cancellations")
    _watcher.start()


_watcher: threading.Thread | None = None


async def _cancellations(settings: Settings) -> None:
    from prefect.client.orchestration import get_client

    engine = get_engine(settings.resolved_database_url)
    async with get_client() as client:
        while True:
            await asyncio.sleep(_POLL_S)
            with contextlib.suppress(Exception):  # the database or the server away for a moment: look again
                await _cancel_cancelling(engine, client)


async def _cancel_cancelling(engine: Any, client: Any) -> None:
    """Cancel this worker's goals whose flow runs are Cancelling (one query for all of them)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypes
    from prefect.client.schemas.objects import StateType

    with _lock:
        ids = list(_running)
    flow_runs = {}
    for run_id in ids:
        record = find_run(engine, run_id)
        if record and record.get("flow_run_id"):
            flow_runs[uuid.UUID(record["flow_run_id"])] = run_id
    if not flow_runs:
        return
    found = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
        id=FlowRunFilterId(any_=list(flow_runs)), state=FlowRunFilterState(type=StateTypes(any_=[StateType.CANCELLING]))))
    for flow_run in found:
        with _lock:
            loop, task = _running.get(flow_runs[flow_run.id], (None, None))
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)


def _say(run_id: str, what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} goal {run_id[:8]}: {what}", file=sys.stderr, flush=True)


def serve(*, roles: list[str] | None = None, goals: bool = True, limit: int = 4) -> None:
    """Serve goals (and the steps of ``roles``) from this process until interrupted."""
    from prefect.task_worker import serve as serve_tasks

    from agentmesh.runtime.remote import step_task

    tasks = [step_task(role) for role in roles or []] + ([goal_task()] if goals else [])
    serve_tasks(*tasks, limit=limit)


# -- worker processes on this machine ---------------------------------------------------------------------


@contextlib.contextmanager
def local_workers(processes: int, *, limit: int, settings: Settings, ready_s: float = 120) -> Iterator[list[int]]:
    """Start ``processes`` goal workers on this machine (``agentmesh worker --goals``: this process's environment,
    with the settings' home, database and model) and wait until each serves; stopped (SIGINT, then killed) after the
    block. Their output goes to this process's standard error. Yields their pids; a ``RunError`` with a worker's
    last lines if one exits before it serves."""
    env = {**os.environ, "AGENTMESH_HOME": str(settings.resolved_home),
           "AGENTMESH_DATABASE_URL": settings.resolved_database_url, "AGENTMESH_MODEL": settings.model_name}
    command = [sys.executable, "-m", "agentmesh", "worker", "--goals", "--limit", str(limit)]
    started: list[subprocess.Popen[str]] = []
    try:
        serving = []
        for _ in range(processes):
            process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
            started.append(process)
            serving.append(_forward(process))
        deadline = time.monotonic() + ready_s
        for process, (ready, lines) in zip(started, serving, strict=True):
            while not ready.wait(0.1):
                if process.poll() is not None or time.monotonic() > deadline:
                    why = f"exited with {process.returncode}" if process.returncode is not None else \
                        f"did not serve within {ready_s:g} s"
                    raise RunError(f"goal worker {process.pid} {why}: " + " / ".join(lines[-3:]))
        yield [p.pid for p in started]
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
        for process in started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def _forward(process: subprocess.Popen[str]) -> tuple[threading.Event, list[str]]:
    """Copy a worker's standard error to this process's; the event is set once it says it serves."""
    ready, lines = threading.Event(), []

    def copy() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            lines.append(line.strip())
            del lines[:-20]
            if "serving goals" in line:
                ready.set()

    threading.Thread(target=copy, daemon=True, name=f"agentmesh-goal-worker-{process.pid}").start()
    return ready, lines
