"""A goal's flow: one Prefect flow run per goal (its id is the run id and the LangGraph thread id), the graph
run durably inside it with a checkpointer, and the run's record, decision and artifacts at the end.

``goal_flow`` is the flow every goal runs as. ``agentmesh run`` and the other in-process callers pass a
``GoalInvocation`` — the typed inputs that are not plain data (settings, the event sink, a chat model) —
as the ``invocation`` parameter; a deployment names the flow by module path
(``agentmesh.runtime.goal:goal_flow``) and a worker runs it with plain parameters and the environment's settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from prefect import flow

from agentmesh.agents.context import RunContext, running
from agentmesh.core import observe
from agentmesh.core.exceptions import AgentmeshError, BudgetExceeded, RunFenced
from agentmesh.core.settings import Settings, get_settings
from agentmesh.persistence.audit import list_calls
from agentmesh.persistence.checkpoints import checkpointer
from agentmesh.persistence.owner import claim_run, lease_end, new_owner, renew_lease, renewing
from agentmesh.persistence.runs import create_run, find_run, get_run, update_run, usage_of_run
from agentmesh.runtime import remote
from agentmesh.runtime.compile import durable_graph
from agentmesh.runtime.components import EventSink, build_run_context, components
from agentmesh.runtime.graphs import GraphSpec, get_graph
from agentmesh.runtime.prefect import InProcess, api_url, in_process
from agentmesh.runtime.tracing import setup_tracing

__all__ = ["FLOW_NAME", "LANGGRAPH_SERVER", "GoalInvocation", "goal_flow"]

FLOW_NAME = "agentmesh-goal"
LANGGRAPH_SERVER = "langgraph-server"
"""The ``deployment`` of a run LangGraph's server runs (``agentmesh.runtime.served``): its graph state is the
server's thread, so it is resumed there, never by ``agentmesh runs resume``."""


@dataclass(kw_only=True)
class GoalInvocation:
    """One goal's inputs, typed, as its caller passes them to the flow; the flow records the run id here."""

    goal: str
    """The goal as submitted."""
    spec: GraphSpec
    """The graph it runs on."""
    settings: Settings
    """The settings of the run."""
    approvals: Literal["wait", "auto", "deny"] = "wait"
    """What a call needing approval does."""
    on_event: EventSink | None = None
    """Where progress events go, besides the run's event log."""
    deployment: str | None = None
    """The deployment that started it, if any."""
    chat_model: BaseChatModel | None = None
    """Replaces the configured model for every agent (a test seam: a scripted model)."""
    context: list[str] | None = None
    """Earlier conversation shown to the planner as data."""
    resume_of: str | None = None
    """The run this invocation resumes."""
    owner: str | None = None
    """The owner this process claimed the resumed run as (``agentmesh.persistence.owner``); None: claimed in the flow."""
    force: bool = False
    """Take the run over even if its owner is alive (fencing that owner)."""
    fenced: str | None = None
    """Why this process stopped writing the run: another one took it over."""
    run_id: str | None = None
    """Pre-assigned (or, once the flow started, the actual) run id."""
    error: str | None = None
    """Why the flow could not start the run."""
    stream_tokens: bool = False
    """Stream the model's replies as live ``token`` events (``agentmesh run``, the HTTP server)."""
    started_by: str | None = None
    """Who submitted the goal (an identity's name, the OS user); recorded on the run, compared by ``four_eyes``."""
    hosted: Callable[[RunContext, dict[str, Any]], Awaitable[bool]] | None = None
    """The graph runs elsewhere — in LangGraph's server (``agentmesh.runtime.served``): called with the run once it
    is established and the dict to put the graph's values in, it returns when that graph run ends: True when it
    paused for approval."""

    def as_parameter(self) -> Any:
        """This invocation as the goal flow's ``invocation`` parameter (Prefect shows a summary of it)."""
        return in_process(self, approvals=self.approvals, model=model_label(self.settings, self.chat_model),
                          context_turns=len(self.context or []))


def flow_run_name() -> str:
    """A goal's flow run is named for the goal: a readable slug and the run id's first 8 characters (a resume
    adds ``-resume``), e.g. ``checkout-api-p95-latency-is-900-ms-bring-it-under-1f3a9c2e``."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    run_id = parameters.get("resume_of") or parameters.get("run_id") or flow_run.id
    name = f"{goal_slug(str(parameters.get('goal') or 'goal'))}-{str(run_id)[:8]}"
    return name + "-resume" if parameters.get("resume_of") else name


def goal_slug(goal: str, limit: int = 48) -> str:
    """Lower-case words of the goal joined by ``-``, cut at a word boundary under ``limit`` characters."""
    words = re.findall(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*", goal.lower())
    slug = ""
    for word in words:
        if len(slug) + len(word) + 1 > limit:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug or (words[0][:limit] if words else "goal")


@flow(name=FLOW_NAME, flow_run_name=flow_run_name, log_prints=False, persist_result=False, validate_parameters=False)
async def goal_flow(goal: str, graph: str = "mesh", resume_of: str | None = None, run_id: str | None = None,
                    invocation: InProcess | None = None) -> Any:
    """One goal: a flow run whose id is the run id (unless one was pre-assigned); every graph node a task run
    under it. Started by Prefect (a schedule, a worker), it reads its settings from the environment."""
    if invocation is not None:
        return await execute(invocation.value)
    from prefect.runtime import deployment

    settings = get_settings()
    return await execute(GoalInvocation(
        goal=goal, spec=get_graph(graph, settings.graphs_paths), settings=settings, approvals=settings.approvals,
        deployment=deployment.name, resume_of=resume_of, run_id=run_id,
        started_by=f"deployment {deployment.name}" if deployment.name else "prefect"))


async def execute(inv: GoalInvocation) -> Any:
    """The body of the goal flow (inside its flow run): with traces on, one ``invoke_workflow`` span, the root
    of the goal's trace (``agentmesh.runtime.tracing``)."""
    from prefect.context import FlowRunContext

    setup_tracing(inv.settings)
    flow_run_id = str(FlowRunContext.get().flow_run.id)  # type: ignore[union-attr]
    with observe.span(f"invoke_workflow {inv.spec.name}", {
        "gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": inv.spec.name,
        "agentmesh.graph": inv.spec.name, "agentmesh.run_id": inv.resume_of or inv.run_id or flow_run_id,
        "agentmesh.flow_run_id": flow_run_id, "agentmesh.model": model_label(inv.settings, inv.chat_model),
        "agentmesh.resumed": inv.resume_of is not None,
        "agentmesh.goal": inv.goal if observe.capture_content() else None,
    }) as current:
        return await _execute(inv, flow_run_id, observe.trace_ids(current))


async def _execute(inv: GoalInvocation, flow_run_id: str, ids: tuple[str, str] | None) -> Any:
    from prefect.states import Cancelled, Failed

    settings = inv.settings
    engine = components(settings).engine
    run_id = inv.run_id = inv.resume_of or inv.run_id or flow_run_id
    resume_of = inv.resume_of
    started = time.perf_counter()
    trace = {"trace_id": ids[0]} if ids else {}
    restarts = 0
    if resume_of is None and (found := find_run(engine, run_id)) is not None:
        # This flow run ran before: a Prefect flow retry, or a deployed goal put back on its pool after its worker
        # died (agentmesh.deployments.ensure_recovery). Go on from the checkpoint, reusing finished work — unless
        # this flow run's own run was resumed in another flow run since, which has it now.
        if run_id == flow_run_id and found["flow_run_id"] not in (None, flow_run_id):
            return Cancelled(message=f"run {run_id} was resumed in flow run {found['flow_run_id']}; nothing to do")
        resume_of = run_id
        from prefect.runtime import flow_run

        restarts = max(0, int(flow_run.run_count or 1) - 1 - settings.flow_retries)
    owner = inv.owner or new_owner()
    if resume_of is None:
        create_run(engine, run_id=run_id, flow_run_id=flow_run_id, goal=inv.goal, graph=inv.spec.name,
                   status="running", model=model_label(settings, inv.chat_model),
                   offline=settings.offline and inv.chat_model is None, deployment=inv.deployment,
                   prefect_api_url=api_url(), started_by=inv.started_by, owner=owner,
                   lease_until=lease_end(settings.run_lease_s), **trace)
    else:
        if inv.owner:  # a resume claimed the run before its flow started
            previous = get_run(engine, run_id)
        else:  # a flow retry, or a deployment's resume: claimed here
            previous = claim_run(engine, run_id, owner, settings.run_lease_s, force=inv.force)
        if restarts > settings.goal_restarts:
            gave_up = (f"its flow run was started {restarts} times after its worker died (goal_restarts is "
                       f"{settings.goal_restarts}); `agentmesh runs resume {run_id}` goes on from its checkpoint")
            update_run(engine, run_id, status="failed", error=gave_up, lease_until=None, if_owner=owner)
            return Failed(message=gave_up)
        update_run(engine, run_id, status="running", flow_run_id=flow_run_id, error=None, if_owner=owner, **trace)
        if previous["status"] == "running" and previous["flow_run_id"] not in (None, flow_run_id):
            # Its process died (or was fenced): say so in Prefect too — after the run names this flow run, so the
            # old one, if the recovery automation puts it back on its pool, finds the run moved on and stops.
            await _mark_crashed(previous["flow_run_id"])
    observe.run_log("agentmesh run %s · graph %s · model %s%s%s", run_id, inv.spec.name,
                    model_label(settings, inv.chat_model),
                    f" · restart {restarts} after its worker died" if restarts else " · resumed" if resume_of else "",
                    f" · trace {ids[0]}" if ids else "")
    status, error = "failed", None
    values: dict[str, Any] = {}
    run: RunContext | None = None
    try:
        run = build_run_context(settings, run_id=run_id, goal=inv.goal, graph=inv.spec.name, approvals=inv.approvals,
                                on_event=inv.on_event, chat_model=inv.chat_model, delegates=remote.delegates(settings),
                                stream_tokens=inv.stream_tokens, owner=owner)
        run.emit({"type": "run_started", "run_id": run_id, "goal": inv.goal, "graph": inv.spec.name,
                  "model": settings.model_name, "offline": settings.offline, "resumed": resume_of is not None})
        if resume_of is None and run.gateway.scope is not None:  # what the goal refers to (agentmesh.gateway.scope)
            run.emit({"type": "scope", "scope": run.gateway.scope.as_json()})
        lease_s = settings.run_lease_s
        with running(run), renewing(lambda: renew_lease(engine, run_id, owner, lease_s), lease_s / 3,
                                    name=f"the lease of run {run_id}", warn=_warn):
            run_graph = inv.hosted or functools.partial(_run_graph, inv, resume_of)
            paused = await run_graph(run, values)
        status = "waiting_approval" if paused else "done"
    except BudgetExceeded as exc:
        status, error = "budget_exceeded", str(exc)
    except asyncio.CancelledError:
        status, error = "cancelled", "cancelled by the user"
        raise
    except AgentmeshError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # a bug in a user's node: recorded, reported in one line, the process survives
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        try:
            if run is not None:
                await _finish(run, status, error, values if isinstance(values, dict) else {},
                              time.perf_counter() - started)
            else:  # it failed before it could start: still recorded, never left "running"
                update_run(engine, run_id, status=status, error=error, lease_until=None, if_owner=owner)
        except RunFenced as exc:  # another process took the run over: its record stays as that process writes it
            inv.fenced = str(exc)
            observe.run_log("%s", exc, level=logging.WARNING)
    if inv.fenced:
        return Failed(message=inv.fenced)
    if status == "failed":
        return Failed(message=error or "failed")
    return status


async def _run_graph(inv: GoalInvocation, resume_of: str | None, run: RunContext, values: dict[str, Any]) -> bool:
    """Run the goal's graph here, durably, from its checkpoint; ``values`` gets the graph's values (what it had
    checkpointed, when it fails). True when it paused for approval."""
    async with checkpointer(inv.settings) as saver:
        compiled = durable_graph(inv.spec.builder, inv.settings).copy({"checkpointer": saver})
        config: RunnableConfig = {"configurable": {"thread_id": run.run_id}, "recursion_limit": 100}
        graph_input = await _input(compiled, config, inv.goal, resume_of, inv.context)
        try:
            if graph_input is not _FINISHED:  # _FINISHED: the graph had ended; the process died before recording it
                await compiled.ainvoke(graph_input, config)
        finally:
            # Partial results too: what the graph had checkpointed (the plan, the findings so far) is kept.
            with contextlib.suppress(Exception):
                values.update((await compiled.aget_state(config)).values)
        snapshot = await compiled.aget_state(config)
    return bool(snapshot.interrupts)


def _warn(message: str) -> None:
    observe.run_log("%s", message, level=logging.WARNING)  # in the flow's context: the flow run's log


async def _mark_crashed(flow_run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    with contextlib.suppress(Exception):  # best effort: the agentmesh database is the record
        async with get_client() as client:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
            if flow_run.state is not None and not flow_run.state.is_final():
                await client.set_flow_run_state(UUID(flow_run_id), Crashed(message="process died; resumed"), force=True)


def model_label(settings: Settings, chat_model: BaseChatModel | None) -> str:
    if chat_model is None:
        return settings.model_name
    return getattr(chat_model, "model_name", None) or chat_model._llm_type


_FINISHED = object()


async def _input(compiled: CompiledStateGraph, config: RunnableConfig, goal: str, resume_of: str | None,
                 context: list[str] | None) -> Any:
    """What to invoke the graph with: a new goal, a resume of its interrupts, or None to go on from the
    last checkpoint (LangGraph re-runs the tasks that had not finished)."""
    if resume_of is None:
        return {"goal": goal, "memory": context} if context else {"goal": goal}
    snapshot = await compiled.aget_state(config)
    if snapshot.interrupts:
        # Each pending approval's verdict is in the audit; the node re-reads it when it replays.
        return Command(resume={i.id: {"approved": None} for i in snapshot.interrupts})
    if snapshot.next:
        return None
    return _FINISHED if snapshot.values else {"goal": goal}


async def _finish(run: RunContext, status: str, error: str | None, values: dict[str, Any], seconds: float) -> None:
    usage = usage_of_run(run.engine, run.run_id)
    previous = get_run(run.engine, run.run_id)
    timings = dict(previous.get("timings") or {})
    timings["wall_s"] = round(timings.get("wall_s", 0) + seconds, 3)
    update_run(  # the lease is released with the outcome: a paused or ended run has no live owner
        run.engine, run.run_id, status=status, error=error, usage=usage, timings=timings,
        plan=values.get("plan") or previous.get("plan"), decision=values.get("decision") or previous.get("decision"),
        prompt_versions=run.prompt_versions or previous.get("prompt_versions"), lease_until=None, if_owner=run.owner,
    )
    run.emit({"type": "run_finished", "status": status, "error": error})
    observe.set_attributes(observe.current_span(), {
        "agentmesh.status": status, "gen_ai.usage.input_tokens": usage["input_tokens"],
        "gen_ai.usage.output_tokens": usage["output_tokens"], "agentmesh.cost_usd": usage["cost_usd"],
        "agentmesh.model_calls": usage["model_calls"], "error.type": status if status != "done"
        and status != "waiting_approval" else None})
    summary = (values.get("decision") or {}).get("summary")
    observe.run_log("run %s · %d model calls · %d tokens · $%.4f%s%s", status, usage["model_calls"],
                    usage["input_tokens"] + usage["output_tokens"], usage["cost_usd"],
                    f" · {observe.redact(error)}" if error else "", f" · decision: {summary}" if summary else "",
                    level=logging.INFO if status in ("done", "waiting_approval", "cancelled") else logging.WARNING)
    try:
        await _artifacts(run, values)
    except Exception as exc:  # artifacts are a view; the run is already recorded
        run.emit({"type": "warning", "message": f"could not create Prefect artifacts: {exc}"})


async def _artifacts(run: RunContext, values: dict[str, Any]) -> None:
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    made = []
    decision = values.get("decision")
    if decision:
        made.append(acreate_markdown_artifact(
            key=f"decision-{run.run_id[:8]}",
            markdown=f"# Decision\n\n{decision['summary']}\n\n**Outcome:** {decision.get('outcome')} · "
            f"**confidence** {decision['confidence']}\n\n## Rationale\n\n{decision['rationale']}\n",
            description=f"Decision for: {run.goal[:120]}",
        ))
    calls = list_calls(run.engine, run.run_id)
    if calls:
        made.append(acreate_table_artifact(
            key=f"tool-calls-{run.run_id[:8]}",
            table=[{"agent": c.agent, "tool": c.tool, "args": str(c.effective_args)[:200], "status": c.status,
                    "reason": c.reason or ""} for c in calls],
            description="Tool calls of this run (agentmesh runs audit shows them in full)",
        ))
    for failed in await asyncio.gather(*made, return_exceptions=True):
        if isinstance(failed, Exception):
            raise failed
