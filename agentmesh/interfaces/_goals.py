"""Goals run in the background of a long-lived process (the HTTP server), and the one event stream they
feed.

``GoalService`` starts each goal as an asyncio task around ``agentmesh.runtime.arun_goal`` with a run id
assigned up front (a client gets it before the flow starts), resumes runs after approvals, cancels them,
and follows a run's stored events (``agentmesh.events``) for Server-Sent Events and streamed chat replies.
With ``on_workers`` (``agentmesh serve --processes N``) the task sends the goal to the goal workers instead
(``agentmesh.runtime.goal_workers``) and waits for it: the same run, events and record, in another process.
Nothing here executes a goal another way: the runtime does, and records every event it emits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from agentmesh.core.exceptions import ConfigError, NotFoundError, UserError
from agentmesh.core.settings import OFFLINE, Settings
from agentmesh.persistence import runs as store
from agentmesh.persistence.database import get_engine
from agentmesh.persistence.events import event_log, events

__all__ = ["TERMINAL", "GoalService"]

log = logging.getLogger("agentmesh.interfaces")

TERMINAL = frozenset({"done", "failed", "budget_exceeded", "cancelled"})
"""Run statuses after which nothing more happens (``waiting_approval`` is a pause, not an end)."""

MAX_CONTEXT_ITEMS = 50


@dataclass(kw_only=True)
class _Submission:
    """A goal this process started, known before the runtime has recorded it."""

    run_id: str
    """The pre-assigned run id."""
    goal: str
    """The goal as submitted."""
    graph: str
    """The graph it runs on."""
    model: str
    """The model name the run uses."""
    created: float = field(default_factory=time.time)
    """When it was submitted (epoch seconds)."""
    task: asyncio.Task[Any] | None = None
    """The task running (or resuming) it; None once nothing runs."""


class GoalService:
    """Runs goals in background tasks of the current event loop and reads their events back."""

    def __init__(self, settings: Settings, *, on_workers: bool = False) -> None:
        self.settings = settings
        self.on_workers = on_workers
        """Goals run in goal-worker processes (``agentmesh worker --goals``), not in this one."""
        self.engine = get_engine(settings.resolved_database_url)
        self.log = event_log(self.engine)
        self._submissions: dict[str, _Submission] = {}
        self._model_settings: dict[str, Settings] = {}

    # -- validation --------------------------------------------------------------------------------

    def graph_names(self) -> list[str]:
        from agentmesh.runtime.graphs import list_graphs

        return sorted(list_graphs(self.settings.graphs_paths))

    def check_graph(self, name: str | None) -> str:
        from agentmesh.runtime.graphs import get_graph

        name = name or self.settings.graph
        try:
            get_graph(name, self.settings.graphs_paths)
        except NotFoundError as exc:
            raise UserError(str(exc)) from None  # a bad field of the request, not a missing resource
        return name

    def settings_for(self, model: str | None) -> Settings:
        """The server's settings, or a copy running another model (one copy per model, reused)."""
        if not model or model == self.settings.model_name:
            return self.settings
        if model != OFFLINE and not self.settings.openai_api_key:
            raise ConfigError(f"model {model!r} needs an API key on the server (OPENAI_API_KEY); "
                              "use \"offline\" or leave the model out")
        found = self._model_settings.get(model)
        if found is None:
            found = self._model_settings[model] = self.settings.model_copy(update={"model": model})
        return found

    # -- runs ----------------------------------------------------------------------------------------

    def submit(self, goal: str, *, graph: str | None = None, model: str | None = None,
               approvals: str | None = None, context: list[str] | None = None, started_by: str | None = None) -> str:
        """Start a goal in the background; returns its run id at once."""
        from agentmesh.runtime.run import MAX_GOAL_CHARS, arun_goal

        text = (goal or "").strip()
        if not text:
            raise UserError("the goal is empty: say what you want done, e.g. \"keep checkout-api p95 under 300 ms\"")
        if len(text) > MAX_GOAL_CHARS:
            raise UserError(f"the goal is {len(text)} characters; keep it under {MAX_GOAL_CHARS}")
        graph_name = self.check_graph(graph)
        settings = self.settings_for(model)
        run_id = str(uuid.uuid4())
        sub = _Submission(run_id=run_id, goal=text, graph=graph_name, model=settings.model_name)
        self._submissions[run_id] = sub
        context = (context or [])[-MAX_CONTEXT_ITEMS:] or None
        if self.on_workers:
            from agentmesh.runtime import goal_workers

            coro = self._on_workers(goal_workers.request(text, graph=graph_name, settings=settings, approvals=approvals,
                                                         context=context, run_id=run_id,
                                                         started_by=started_by or "http"), settings)
        else:
            coro = arun_goal(text, graph=graph_name, settings=settings, approvals=approvals, context=context,
                             run_id=run_id, started_by=started_by or "http", stream_tokens=True)
        sub.task = asyncio.create_task(self._guard(sub, coro), name=f"agentmesh-goal-{run_id[:8]}")
        return run_id

    async def _on_workers(self, request: dict[str, Any], settings: Settings) -> dict[str, Any]:
        from agentmesh.runtime.goal_workers import run_on_workers

        return self.get(await run_on_workers(request, settings))

    async def _guard(self, sub: _Submission, coro: Any) -> dict[str, Any] | None:
        """Await a run; a failure the runtime could not record (it never started) is recorded here."""
        try:
            return await coro
        except asyncio.CancelledError:
            self._record_unstarted(sub, "cancelled", "cancelled by the user before the run started")
            raise
        except Exception as exc:
            log.exception("goal %s failed outside the runtime", sub.run_id)
            self._record_unstarted(sub, "failed", f"{type(exc).__name__}: {exc}")
            return None
        finally:
            if sub.task is asyncio.current_task():
                sub.task = None

    def _record_unstarted(self, sub: _Submission, status: str, error: str) -> None:
        with contextlib.suppress(NotFoundError):
            store.get_run(self.engine, sub.run_id)
            return  # the runtime recorded it (and its run_finished event)
        store.create_run(self.engine, run_id=sub.run_id, flow_run_id=None, goal=sub.goal, graph=sub.graph,
                         status=status, error=error, model=sub.model, offline=sub.model == OFFLINE)
        self.log.append(sub.run_id, {"type": "run_finished", "status": status, "error": error,
                                     "run_id": sub.run_id, "time": time.time()})

    def active(self, run_id: str) -> bool:
        sub = self._submissions.get(run_id)
        return bool(sub and sub.task and not sub.task.done())

    def resolve(self, run_id: str) -> str:
        """The full run id of an id or unique prefix; NotFoundError if unknown."""
        if run_id in self._submissions:
            return run_id
        return str(store.get_run(self.engine, run_id)["run_id"])

    def status(self, run_id: str) -> str:
        try:
            return str(store.get_run(self.engine, run_id)["status"])
        except NotFoundError:
            if run_id in self._submissions:
                return "queued"
            raise

    def get(self, run_id: str) -> dict[str, Any]:
        """The run's JSON (agentmesh.runs); a goal not yet recorded by the runtime shows as ``queued``."""
        from agentmesh.persistence.runs import run_result

        try:
            result = run_result(self.engine, run_id)
        except NotFoundError:
            sub = self._submissions.get(run_id)
            if sub is None:
                raise
            result = {"run_id": sub.run_id, "flow_run_id": None, "flow_run_url": None, "goal": sub.goal, "graph": sub.graph,
                      "status": "queued", "error": None, "model": {"name": sub.model, "offline": sub.model == OFFLINE},
                      "plan": None, "decision": None, "steps": [], "pending_approvals": [], "usage": {},
                      "timings": {}, "created": None, "updated": None}
        return {"id": result["run_id"], **result}

    async def wait(self, run_id: str) -> dict[str, Any]:
        """Wait for the background task of a run (if any), then return the run JSON."""
        sub = self._submissions.get(run_id)
        task = sub.task if sub else None
        if task is not None:
            await asyncio.wait([task])
        return self.get(run_id)

    async def approve(self, run_id: str, call_id: str | None, *, approved: bool, approver: str,
                      reason: str | None = None, args: dict[str, Any] | None = None,
                      force: bool = False) -> dict[str, Any]:
        """Record a verdict on pending calls (one, or all; ``args``: approved with these arguments changed) and
        resume the run in the background (``RunOwned`` if a live process owns it, unless ``force``)."""
        from agentmesh.runtime.approvals import aapprove

        run_id = self.resolve(run_id)
        await aapprove(run_id, call_id, approved=approved, approver=approver, reason=reason, args=args,
                       settings=self.settings, resume=False, force=force)
        self._resume(run_id, force=force)
        return self.get(run_id)

    def _resume(self, run_id: str, *, force: bool = False) -> None:
        """Resume the run in the background, after the task still finishing it (if any) is over."""
        from agentmesh.runtime.run import aresume_run

        record = store.get_run(self.engine, run_id)
        sub = self._submissions.get(run_id)
        if sub is None:
            sub = self._submissions[run_id] = _Submission(run_id=run_id, goal=record["goal"], graph=record["graph"],
                                                          model=record["model"])
        known = record["model"] in (OFFLINE, self.settings.model_name) or self.settings.openai_api_key
        settings = self.settings_for(record["model"] if known else None)
        previous = sub.task

        async def resume() -> dict[str, Any] | None:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])  # a run that just paused is still writing its artifacts
            if self.status(run_id) != "waiting_approval" and not force:
                return None  # another verdict's resume got here first
            if self.on_workers:
                from agentmesh.runtime import goal_workers

                return await self._on_workers(goal_workers.request(
                    record["goal"], graph=record["graph"], settings=settings, resume_of=run_id, force=force), settings)
            return await aresume_run(run_id, settings=settings, stream_tokens=True, force=force)

        sub.task = asyncio.create_task(self._guard(sub, resume()), name=f"agentmesh-resume-{run_id[:8]}")

    async def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a run: its task is cancelled (the runtime records ``cancelled``), or a paused run is closed."""
        run_id = self.resolve(run_id)
        sub = self._submissions.get(run_id)
        stopped = False
        if sub and sub.task and not sub.task.done():
            sub.task.cancel()
            await asyncio.wait([sub.task], timeout=30)
            stopped = True
        status = self.status(run_id)
        if status in TERMINAL:
            if stopped:
                return self.get(run_id)
            raise UserError(f"run {run_id} is already {status}; there is nothing to cancel")
        if status == "running" and not stopped:
            raise UserError(f"run {run_id} is running in another process; cancel it there")
        # Paused for approval (or stopped between its pause and its end): nothing runs, close it here.
        store.update_run(self.engine, run_id, status="cancelled", error="cancelled by the user")
        self.log.append(run_id, {"type": "run_finished", "status": "cancelled", "error": "cancelled by the user",
                                 "run_id": run_id, "time": time.time()})
        return self.get(run_id)

    def cancel_soon(self, run_id: str) -> None:
        """Cancel a run's task if it is still going, without waiting (the runtime records ``cancelled``)."""
        sub = self._submissions.get(run_id)
        if sub and sub.task and not sub.task.done():
            sub.task.cancel()

    async def shutdown(self) -> None:
        """Cancel the runs still going (each is recorded ``cancelled``)."""
        tasks = [s.task for s in self._submissions.values() if s.task and not s.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=30)

    # -- events --------------------------------------------------------------------------------------

    def _last_boundary(self, run_id: str) -> dict[str, Any] | None:
        """The run's latest run_started or run_finished event."""
        from sqlalchemy import select

        with self.engine.connect() as conn:
            row = conn.execute(select(events.c.data)
                               .where(events.c.run_id == run_id, events.c.type.in_(("run_started", "run_finished")))
                               .order_by(events.c.seq.desc()).limit(1)).first()
        return row[0] if row else None

    async def follow(self, run_id: str, *, after: int = 0, stop_on_pause: bool = False,
                     idle_timeout: float = 1.0) -> AsyncIterator[dict[str, Any] | None]:
        """The run's events after ``after``, live, with the ``token`` events published meanwhile in their place;
        ends once a ``run_finished`` of a terminal status (or of any status with ``stop_on_pause``) has been
        passed and the run's task is over. Yields None when nothing happened for ``idle_timeout`` seconds (a
        heartbeat)."""
        def ends(event: dict[str, Any] | None) -> bool:
            if not event or event.get("type") != "run_finished":
                return False
            return stop_on_pause or event.get("status") in TERMINAL

        boundary = self._last_boundary(run_id)
        finished = boundary is not None and ends(boundary) and int(boundary.get("seq") or 0) <= after
        if boundary is None and run_id not in self._submissions and self.status(run_id) in TERMINAL:
            return  # recorded without events (by an older version): nothing will come
        held = 0.0
        with self.log.subscribe(run_id) as live:  # tokens: live only, each placed after the stored event before it
            while True:
                batch = self.log.read(run_id, after=after)
                for event in batch:
                    while live and int(live[0]["after"]) < int(event["seq"]):
                        yield live.popleft()
                    after = int(event.get("seq") or after)
                    yield event
                    if event.get("type") == "run_started":
                        finished = False
                    elif ends(event):
                        finished = True
                while live and int(live[0]["after"]) <= after:
                    yield live.popleft()
                held = held if live else 0.0
                sub = self._submissions.get(run_id)
                task = sub.task if sub else None
                if finished and (task is None or task.done()):
                    if not batch:
                        return
                    continue  # one more read: whatever the run wrote after run_finished
                if batch:
                    continue
                if live:  # a token waits for the stored event before it to commit (a number never used: not long)
                    held = held or time.monotonic()
                    if time.monotonic() - held > 0.2:
                        while live:
                            yield live.popleft()
                    await asyncio.sleep(0.01)
                    continue
                if finished and task is not None:
                    await asyncio.wait([task], timeout=idle_timeout)
                else:
                    # Another process may write (a CLI approval): the timeout makes this a poll as well.
                    await self.log.wait(run_id, idle_timeout)
                yield None
