"""Running goals: ``compile`` makes any LangGraph ``StateGraph`` durable — every node a Prefect task — and
``run_goal`` runs one goal as one Prefect flow run with a checkpointer keyed by the run id.

    from agentmesh import run_goal
    result = run_goal("checkout-api p95 is 900 ms; bring it under 300 ms")
    result["decision"]["summary"]

Retries: a node is a Prefect task with ``settings.node_retries`` retries, except when the failure is the
model transport giving up (its own retry layer already ran), a budget, a policy refusal or bad input —
those would only multiply. LangGraph's own RetryPolicy is not used. An ``interrupt()`` inside a node is a
pause, not a failure: the task completes and the interrupt is re-raised outside it, so Prefect neither
retries it nor shows a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import time
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphBubbleUp
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from . import store
from ._context import Budget, RunContext, StepScope, _run, _step
from ._prefect import api_url, configure_prefect, shared_clients
from .checkpoints import checkpointer
from .exceptions import AgentmeshError, BudgetExceeded, RunError, UserError
from .settings import Settings, get_settings

__all__ = ["arun_goal", "aresume_run", "compile", "run_goal", "resume_run"]

MAX_GOAL_CHARS = 4000


# -- compile: every node a Prefect task ---------------------------------------------------------------


@dataclasses.dataclass
class _Bubble:
    """A LangGraph control-flow signal (interrupt, parent command) carried out of a Prefect task."""

    error: GraphBubbleUp


def compile(graph: StateGraph, *, checkpointer: BaseCheckpointSaver | None = None, retries: int | None = None,
            **compile_kwargs: Any) -> CompiledStateGraph:
    """Compile a StateGraph with every node run as a Prefect task named for the node, tagged with its role.

    The role comes from the node's metadata (``add_node(..., metadata={"agent": "analyst"})``). Works on any
    StateGraph; the original builder is left untouched.
    """
    return durable_builder(graph, retries=retries).compile(checkpointer=checkpointer, **compile_kwargs)


def durable_builder(graph: StateGraph, *, retries: int | None = None) -> StateGraph:
    """A copy of the builder whose nodes run as Prefect tasks (compile it with the checkpointer you need)."""
    configure_prefect(get_settings())
    builder = copy.copy(graph)
    builder.nodes = {name: _durable_node(name, spec, retries) for name, spec in graph.nodes.items()}
    return builder


_durable_graphs: weakref.WeakKeyDictionary[StateGraph, dict[int | None, CompiledStateGraph]] = weakref.WeakKeyDictionary()


def _durable_graph(graph: StateGraph, retries: int | None) -> CompiledStateGraph:
    """The graph compiled durably once per builder and process; a goal attaches its checkpointer with
    ``copy()`` (wrapping every node in tasks and compiling cost ~30 ms a goal)."""
    by_retries = _durable_graphs.setdefault(graph, {})
    if retries not in by_retries:
        by_retries[retries] = compile(graph, retries=retries)
    return by_retries[retries]


def _durable_node(name: str, spec: Any, retries: int | None) -> Any:
    from langgraph._internal._runnable import RunnableCallable
    from prefect import task
    from prefect.cache_policies import NONE
    from prefect.utilities.annotations import quote

    original = spec.runnable
    role = (spec.metadata or {}).get("agent")
    options = dict(
        name=name,
        tags=["agentmesh", role or "router"],
        retries=retries if retries is not None else _default_retries(),
        retry_delay_seconds=1,
        retry_condition_fn=_should_retry,
        cache_policy=NONE,
        persist_result=False,
    )

    async def run_async(state: Any, config: Any) -> Any:
        with _step_scope(name, role, config):
            try:
                return await original.ainvoke(state, config)
            except GraphBubbleUp as signal:
                return _Bubble(signal)

    def run_sync(state: Any, config: Any) -> Any:
        with _step_scope(name, role, config):
            try:
                return original.invoke(state, config)
            except GraphBubbleUp as signal:
                return _Bubble(signal)

    async_task = task(run_async, **options)
    sync_task = task(run_sync, **options)

    async def afunc(state: Any, config: RunnableConfig) -> Any:
        # quote(): Prefect must not walk the state and config looking for futures (the config holds the
        # checkpointer and callbacks); the task gets them as they are.
        return _unwrap(await async_task(quote(state), quote(config)))

    def func(state: Any, config: RunnableConfig) -> Any:
        from prefect.context import SyncClientContext

        with SyncClientContext.get_or_create():  # ~4 ms a task instead of ~26 ms (a new client per task)
            return _unwrap(sync_task(quote(state), quote(config)))

    return dataclasses.replace(spec, runnable=RunnableCallable(func, afunc, name=name, trace=False), retry_policy=None)


def _unwrap(result: Any) -> Any:
    if isinstance(result, _Bubble):
        raise result.error
    return result


def _default_retries() -> int:
    run = _run.get()
    return run.settings.node_retries if run else 0


def _should_retry(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed node unless retrying cannot help: budgets, policy, bad input, exhausted re-asks, or the
    model transport, whose own retry layer already ran (retries must not multiply)."""
    from .models import is_transport_failure

    # The task engine wraps the exception as the Failed state's data (reading `state.result()` here would
    # return a coroutine in an async task).
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        return True
    return not isinstance(error, (UserError, RunError)) and not is_transport_failure(error)


@contextlib.contextmanager
def _step_scope(node: str, role: str | None, config: Any):  # type: ignore[no-untyped-def]
    key = (config or {}).get("configurable", {}).get("checkpoint_ns") or node
    scope = StepScope(key=key, node=node, agent=role)
    token = _step.set(scope)
    run = _run.get()
    try:
        if run is not None:
            _record_step_start(run, scope)
        yield scope
    except BaseException:
        if run is not None:
            _record_step_end(run, scope, "failed")
        raise
    else:
        if run is not None:
            _record_step_end(run, scope, "done")
    finally:
        _step.reset(token)


def _record_step_start(run: RunContext, scope: StepScope) -> None:
    from prefect.context import TaskRunContext
    from sqlalchemy import delete, insert

    ctx = TaskRunContext.get()
    task_run_id = str(ctx.task_run.id) if ctx else None
    with run.engine.begin() as conn:  # the step's row and its event: one commit
        conn.execute(delete(store.steps).where(store.steps.c.run_id == run.run_id, store.steps.c.step_key == scope.key))
        conn.execute(insert(store.steps).values(
            run_id=run.run_id, step_key=scope.key, node=scope.node, agent=scope.agent, prefect_task_run_id=task_run_id,
            status="running", seq=run.next_step_seq(), started=store.utcnow(),
        ))
        run.emit({"type": "step_started", "node": scope.node, "agent": scope.agent}, conn)


def _record_step_end(run: RunContext, scope: StepScope, status: str) -> None:
    from sqlalchemy import update

    with run.engine.begin() as conn:
        conn.execute(update(store.steps).where(store.steps.c.run_id == run.run_id, store.steps.c.step_key == scope.key)
                     .values(status=status, ended=store.utcnow()))
        run.emit({"type": "step_finished", "node": scope.node, "agent": scope.agent, "status": status}, conn)


# -- components shared by the runs of a process ----------------------------------------------------------


@dataclasses.dataclass
class _Components:
    settings: Settings
    engine: Any
    registry: Any
    policy: Any
    world: Any


_components: dict[tuple[str, str], _Components] = {}


def components(settings: Settings) -> _Components:
    """Engine, tools, policy and world for these settings, built once per process."""
    from .policy import Policy
    from .tools import ToolRegistry
    from .world import World

    key = (settings.resolved_database_url, str(settings.resolved_home))
    found = _components.get(key)
    if found is None or found.settings is not settings:
        engine = store.get_engine(settings.resolved_database_url)
        policy = Policy.load(settings.resolved_policy_file)
        world = World(engine, home=settings.resolved_home, policy=policy)
        registry = ToolRegistry.load(settings.tools_paths)
        found = _components[key] = _Components(settings, engine, registry, policy, world)
    return found


# -- running a goal ---------------------------------------------------------------------------------------

EventSink = Callable[[dict[str, Any]], None]

# Passed around the Prefect flow, whose parameters must stay plain data.
_invocation: ContextVar[dict[str, Any] | None] = ContextVar("agentmesh_invocation", default=None)


async def arun_goal(goal: str, *, graph: str | None = None, settings: Settings | None = None,
                    approvals: str | None = None, on_event: EventSink | None = None,
                    deployment: str | None = None, chat_model: BaseChatModel | None = None,
                    context: list[str] | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Run one goal to its end (or to a pause for approval); returns the run's JSON (see agentmesh.runs).

    ``chat_model`` replaces the configured model for every agent (a test seam: a scripted model).
    ``context`` is earlier conversation (e.g. previous goals and decisions of a chat thread), shown to the
    planner as data. ``run_id`` pre-assigns the run id (e.g. a uuid4 the HTTP API returns before the flow
    starts); by default the run id is the flow run's id.
    """
    goal = (goal or "").strip()
    if not goal:
        raise UserError("the goal is empty: say what you want done, e.g. \"keep checkout-api p95 under 300 ms\"")
    if len(goal) > MAX_GOAL_CHARS:
        raise UserError(f"the goal is {len(goal)} characters; keep it under {MAX_GOAL_CHARS}")
    settings = settings or get_settings()
    graph_name = graph or settings.graph
    from .graphs import get_graph

    spec = get_graph(graph_name, settings.graphs_paths)
    return await _execute(settings, spec, goal=goal, run_id=None, approvals=approvals, on_event=on_event,
                          deployment=deployment, chat_model=chat_model, context=context, new_run_id=run_id)


async def aresume_run(run_id: str, *, settings: Settings | None = None, approvals: str | None = None,
                      on_event: EventSink | None = None, chat_model: BaseChatModel | None = None) -> dict[str, Any]:
    """Continue a run from its last checkpoint: after a crash, a pause for approval, or a failure."""
    settings = settings or get_settings()
    record = store.get_run(store.get_engine(settings.resolved_database_url), run_id)
    if record["status"] == "done":
        raise UserError(f"run {record['run_id']} is already done; nothing to resume")
    from .approvals import expire_approvals
    from .graphs import get_graph

    spec = get_graph(record["graph"], settings.graphs_paths)
    expire_approvals(settings, record["run_id"])
    return await _execute(settings, spec, goal=record["goal"], run_id=record["run_id"], approvals=approvals,
                          on_event=on_event, deployment=record.get("deployment"), chat_model=chat_model)


def run_goal(goal: str, **kwargs: Any) -> dict[str, Any]:
    """Synchronous ``arun_goal``."""
    return asyncio.run(arun_goal(goal, **kwargs))


def resume_run(run_id: str, **kwargs: Any) -> dict[str, Any]:
    """Synchronous ``aresume_run``."""
    return asyncio.run(aresume_run(run_id, **kwargs))


async def _execute(settings: Settings, spec: Any, *, goal: str, run_id: str | None, approvals: str | None,
                   on_event: EventSink | None, deployment: str | None,
                   chat_model: BaseChatModel | None = None, context: list[str] | None = None,
                   new_run_id: str | None = None) -> dict[str, Any]:
    configure_prefect(settings)
    parts = components(settings)
    parts.world.ensure_initialised()
    builder = spec.builder  # import errors surface before Prefect starts
    invocation = {
        "settings": settings, "parts": parts, "builder": builder, "on_event": on_event or (lambda e: None),
        "approvals": approvals or settings.approvals, "deployment": deployment, "run_id": run_id,
        "chat_model": chat_model, "context": context,
    }
    token = _invocation.set(invocation)
    try:
        flow = _goal_flow(settings)
        name = f"resume-{run_id[:8]}" if run_id else None
        runner = flow.with_options(flow_run_name=name) if name else flow
        async with shared_clients():
            await runner(goal=goal, graph=spec.name, resume_of=run_id, run_id=new_run_id, return_state=True)
    finally:
        _invocation.reset(token)
    from .runs import run_result

    if invocation.get("run_id") is None:
        raise RunError(invocation.get("error") or "the run did not start")
    return run_result(parts.engine, invocation["run_id"])


def _goal_flow(settings: Settings) -> Any:
    from .deployments import goal_flow

    if settings.flow_retries:
        return goal_flow.with_options(retries=settings.flow_retries, retry_delay_seconds=1)
    return goal_flow


def _deployed_invocation(graph: str) -> dict[str, Any]:
    """A flow run started by Prefect (a schedule, `agentmesh deploy run`, a worker): settings from the env."""
    from prefect.runtime import deployment

    from .graphs import get_graph

    settings = get_settings()
    parts = components(settings)
    parts.world.ensure_initialised()
    return {"settings": settings, "parts": parts, "builder": get_graph(graph, settings.graphs_paths).builder,
            "on_event": lambda e: None, "approvals": settings.approvals, "deployment": deployment.name,
            "run_id": None, "chat_model": None, "context": None}


async def _goal(goal: str, graph: str = "mesh", resume_of: str | None = None, run_id: str | None = None) -> str:
    """One goal: a flow run whose id is the run id (unless one was pre-assigned); every graph node a task
    run under it."""
    from prefect.context import FlowRunContext
    from prefect.states import Failed

    inv = _invocation.get() or _deployed_invocation(graph)
    settings: Settings = inv["settings"]
    parts: _Components = inv["parts"]
    flow_run_id = str(FlowRunContext.get().flow_run.id)  # type: ignore[union-attr]
    run_id = resume_of or run_id or flow_run_id
    inv["run_id"] = run_id
    started = time.perf_counter()
    if resume_of is None and store.find_run(parts.engine, run_id) is not None:
        resume_of = run_id  # a Prefect flow retry: go on from the checkpoint, reusing finished work
    if resume_of is None:
        store.create_run(parts.engine, run_id=run_id, flow_run_id=flow_run_id, goal=goal, graph=graph,
                         status="running", model=_model_label(settings, inv["chat_model"]), offline=settings.offline and inv["chat_model"] is None,
                         deployment=inv["deployment"], prefect_api_url=api_url())
    else:
        previous = store.get_run(parts.engine, run_id)
        if previous["status"] == "running" and previous["flow_run_id"]:
            await _mark_crashed(previous["flow_run_id"])  # its process died: say so in Prefect too
        store.update_run(parts.engine, run_id, status="running", flow_run_id=flow_run_id, error=None)
    status, error = "failed", None
    values: dict[str, Any] = {}
    run: RunContext | None = None
    token = None
    try:
        budget = _budget(settings, parts.engine, run_id)
        run = RunContext(run_id=run_id, goal=goal, graph=graph, settings=settings, engine=parts.engine,
                         registry=parts.registry, policy=parts.policy, world=parts.world, budget=budget,
                         approvals=inv["approvals"], emit=_emitter(run_id, inv["on_event"], parts.engine))
        if inv["chat_model"] is not None:
            run.models[settings.model_name] = inv["chat_model"]
        run._step_seq = max((s["seq"] for s in store.list_steps(parts.engine, run_id)), default=0)
        run.emit({"type": "run_started", "run_id": run_id, "goal": goal, "graph": graph, "model": settings.model_name,
                  "offline": settings.offline, "resumed": resume_of is not None})
        token = _run.set(run)
        async with checkpointer(settings) as saver:
            compiled = _durable_graph(inv["builder"], settings.node_retries).copy({"checkpointer": saver})
            config: RunnableConfig = {"configurable": {"thread_id": run_id}, "recursion_limit": 100}
            graph_input = await _input(compiled, config, goal, resume_of, inv["context"])
            try:
                if graph_input is _FINISHED:  # the graph had ended; the process died before recording it
                    values = (await compiled.aget_state(config)).values
                else:
                    values = await compiled.ainvoke(graph_input, config)
            except Exception:
                # Partial results: what the graph had checkpointed (the plan, the findings so far) is kept.
                with contextlib.suppress(Exception):
                    values = (await compiled.aget_state(config)).values
                raise
            snapshot = await compiled.aget_state(config)
        status = "waiting_approval" if snapshot.interrupts else "done"
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
        if token is not None:
            _run.reset(token)
        if run is not None:
            await _finish(run, status, error, values if isinstance(values, dict) else {}, time.perf_counter() - started)
        else:  # it failed before it could start: still recorded, never left "running"
            store.update_run(parts.engine, run_id, status=status, error=error)
    if status == "failed":
        return Failed(message=error or "failed")  # type: ignore[return-value]
    return status


async def _mark_crashed(flow_run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    with contextlib.suppress(Exception):  # best effort: the agentmesh database is the record
        async with get_client() as client:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
            if flow_run.state is not None and not flow_run.state.is_final():
                await client.set_flow_run_state(UUID(flow_run_id), Crashed(message="process died; resumed"), force=True)


def _model_label(settings: Settings, chat_model: BaseChatModel | None) -> str:
    if chat_model is None:
        return settings.model_name
    return getattr(chat_model, "model_name", None) or chat_model._llm_type


def _budget(settings: Settings, engine: Any, run_id: str) -> Budget:
    from sqlalchemy import func, select

    budget = Budget(max_model_calls=settings.max_model_calls, max_tokens=settings.max_tokens,
                    max_cost_usd=settings.max_cost_usd, max_seconds=settings.max_seconds)
    with engine.connect() as conn:
        calls, tokens_in, tokens_out, cost = conn.execute(
            select(func.count(), func.coalesce(func.sum(store.model_calls.c.input_tokens), 0),
                   func.coalesce(func.sum(store.model_calls.c.output_tokens), 0),
                   func.coalesce(func.sum(store.model_calls.c.cost_usd), 0.0))
            .where(store.model_calls.c.run_id == run_id)
        ).one()
    budget.model_calls, budget.input_tokens, budget.output_tokens, budget.cost_usd = calls, tokens_in, tokens_out, cost
    return budget


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


def _emitter(run_id: str, sink: EventSink, engine: Any) -> EventSink:
    from .events import event_log

    log = event_log(engine)

    def emit(event: dict[str, Any], conn: Any = None) -> None:
        event.setdefault("run_id", run_id)
        event.setdefault("time", time.time())
        log.append(run_id, event, conn)
        with contextlib.suppress(Exception):  # a broken display must not break a run
            sink(event)

    return emit


async def _finish(run: RunContext, status: str, error: str | None, values: dict[str, Any], seconds: float) -> None:
    from .runs import usage_of_run

    usage = usage_of_run(run.engine, run.run_id)
    previous = store.get_run(run.engine, run.run_id)
    timings = dict(previous.get("timings") or {})
    timings["wall_s"] = round(timings.get("wall_s", 0) + seconds, 3)
    store.update_run(
        run.engine, run.run_id, status=status, error=error, usage=usage, timings=timings,
        plan=values.get("plan") or previous.get("plan"), decision=values.get("decision") or previous.get("decision"),
        prompt_versions=run.prompt_versions or previous.get("prompt_versions"),
    )
    run.emit({"type": "run_finished", "status": status, "error": error})
    try:
        await _artifacts(run, values)
    except Exception as exc:  # artifacts are a view; the run is already recorded
        run.emit({"type": "warning", "message": f"could not create Prefect artifacts: {exc}"})


async def _artifacts(run: RunContext, values: dict[str, Any]) -> None:
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    from .audit import list_calls

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
            table=[{"agent": c.agent, "tool": c.tool, "args": str(c.args)[:200], "status": c.status,
                    "reason": c.reason or ""} for c in calls],
            description="Tool calls of this run (agentmesh runs audit shows them in full)",
        ))
    for failed in await asyncio.gather(*made, return_exceptions=True):
        if isinstance(failed, Exception):
            raise failed
