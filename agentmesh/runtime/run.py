"""Running goals: ``run_goal`` runs one goal as one Prefect flow run (``agentmesh.runtime.goal``) with a
checkpointer keyed by the run id; ``resume_run`` continues one from its last checkpoint.

    from agentmesh import run_goal
    result = run_goal("checkout-api p95 is 900 ms; bring it under 300 ms")
    result["decision"]["summary"]
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from pathlib import Path
from typing import Any, Literal, cast, get_args

from langchain_core.language_models import BaseChatModel

from agentmesh.core.exceptions import RunError, RunFenced, UserError
from agentmesh.core.settings import Settings, get_settings
from agentmesh.gateway.approvals import expire_approvals
from agentmesh.persistence.owner import claim_run, new_owner
from agentmesh.persistence.runs import get_run, run_result
from agentmesh.runtime.components import EventSink, components
from agentmesh.runtime.goal import LANGGRAPH_SERVER, GoalInvocation, goal_flow, model_label
from agentmesh.runtime.graphs import GraphSpec, get_graph
from agentmesh.runtime.prefect import configure_prefect, shared_clients
from agentmesh.runtime.tracing import setup_tracing

__all__ = ["aresume_run", "arun_goal", "resume_run", "run_goal"]

MAX_GOAL_CHARS = 4000


async def arun_goal(goal: str, *, graph: str | None = None, settings: Settings | None = None,
                    approvals: str | None = None, on_event: EventSink | None = None,
                    deployment: str | None = None, chat_model: BaseChatModel | None = None,
                    context: list[str] | None = None, run_id: str | None = None,
                    started_by: str | None = None, stream_tokens: bool = False) -> dict[str, Any]:
    """Run one goal to its end (or to a pause for approval); returns the run's JSON (see agentmesh.persistence.runs).

    ``chat_model`` replaces the configured model for every agent (a test seam: a scripted model).
    ``context`` is earlier conversation (e.g. previous goals and decisions of a chat thread), shown to the
    planner as data. ``run_id`` pre-assigns the run id (e.g. a uuid4 the HTTP API returns before the flow
    starts); by default the run id is the flow run's id. ``started_by`` is who submitted the goal (default: the
    OS user), recorded on the run: under the policy's ``four_eyes`` that identity cannot approve its own run's calls.
    ``stream_tokens`` streams the model's replies: each piece is a ``token`` event to ``on_event`` (and to the run's
    live followers in this process) as it arrives; tokens are not stored with the other events.
    """
    goal = _checked(goal)
    settings = settings or get_settings()
    spec = get_graph(graph or settings.graph, settings.graphs_paths)
    return await _execute(GoalInvocation(
        goal=goal, spec=spec, settings=settings, approvals=_approvals(approvals, settings), on_event=on_event,
        deployment=deployment, chat_model=chat_model, context=context, run_id=run_id,
        started_by=started_by or _os_user(), stream_tokens=stream_tokens))


async def aresume_run(run_id: str, *, settings: Settings | None = None, approvals: str | None = None,
                      on_event: EventSink | None = None, chat_model: BaseChatModel | None = None,
                      stream_tokens: bool = False, force: bool = False) -> dict[str, Any]:
    """Continue a run from its last checkpoint: after a crash, a pause for approval, or a failure
    (``stream_tokens`` as for ``arun_goal``).

    This process becomes the run's owner (``agentmesh.persistence.owner``): ``RunOwned`` if a live process owns it;
    ``force`` takes it over anyway, and that process's later writes to the run are rejected."""
    settings = settings or get_settings()
    parts = components(settings)
    record = get_run(parts.engine, run_id)
    if record["status"] == "done":
        raise UserError(f"run {record['run_id']} is already done; nothing to resume")
    if record.get("deployment") == LANGGRAPH_SERVER:
        raise UserError(f"run {record['run_id']} runs on a LangGraph server: resume its thread there "
                        "(a run with Command(resume=...) on that thread)")
    spec = get_graph(record["graph"], settings.graphs_paths)
    owner = new_owner()
    claim_run(parts.engine, record["run_id"], owner, settings.run_lease_s, force=force)
    expire_approvals(parts.engine, parts.policy, record["run_id"])
    return await _execute(GoalInvocation(
        goal=record["goal"], spec=spec, settings=settings, approvals=_approvals(approvals, settings),
        on_event=on_event, deployment=record.get("deployment"), chat_model=chat_model, resume_of=record["run_id"],
        stream_tokens=stream_tokens, owner=owner, force=force))


def run_goal(goal: str, **kwargs: Any) -> dict[str, Any]:
    """Synchronous ``arun_goal``."""
    return asyncio.run(arun_goal(goal, **kwargs))


def resume_run(run_id: str, **kwargs: Any) -> dict[str, Any]:
    """Synchronous ``aresume_run``."""
    return asyncio.run(aresume_run(run_id, **kwargs))


Approvals = Literal["wait", "auto", "deny"]


def _checked(goal: str) -> str:
    goal = (goal or "").strip()
    if not goal:
        raise UserError("the goal is empty: say what you want done, e.g. \"keep checkout-api p95 under 300 ms\"")
    if len(goal) > MAX_GOAL_CHARS:
        raise UserError(f"the goal is {len(goal)} characters; keep it under {MAX_GOAL_CHARS}")
    return goal


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in a container without a passwd entry
        return "unknown"


def _approvals(value: str | None, settings: Settings) -> Approvals:
    value = value or settings.approvals
    if value in get_args(Approvals):
        return cast(Approvals, value)
    raise UserError(f"approvals must be wait, auto or deny, not {value!r}")


async def _execute(inv: GoalInvocation) -> dict[str, Any]:
    setup_tracing(inv.settings)  # a bad AGENTMESH_OTEL is one line, before Prefect starts
    configure_prefect(inv.settings)
    components(inv.settings)  # the database, plug-ins, policy and tools: a bad one is one line before Prefect starts
    _check(inv.spec)
    flow = _goal_flow(inv.settings.flow_retries)
    from prefect import tags

    # The flow run is tagged with the graph and the model (a deployment's runs carry the deployment's tags).
    try:
        with tags("agentmesh", f"graph:{inv.spec.name}", f"model:{model_label(inv.settings, inv.chat_model)}"):
            async with shared_clients():
                await flow(goal=inv.goal, graph=inv.spec.name, resume_of=inv.resume_of, run_id=inv.run_id,
                           invocation=inv.as_parameter(), return_state=True)
    except asyncio.CancelledError:
        await asyncio.shield(_cancelled_in_prefect(inv))
        raise
    if inv.run_id is None:
        raise RunError(inv.error or "the run did not start")
    if inv.fenced:
        raise RunFenced(inv.fenced)
    return run_result(components(inv.settings).engine, inv.run_id)


@functools.cache
def _goal_flow(retries: int) -> Any:
    """The goal flow as this process calls it: the settings' flow retries, and a result storage of its own. Nothing
    is persisted (``persist_result=False``: agentmesh's database is the record), but a flow with no storage asks the
    Prefect server for its default storage twice in every flow run, each a blocking request on the event loop."""
    from prefect.settings import get_current_settings

    storage = Path(get_current_settings().results.local_storage_path)  # a folder: Prefect's own local default
    retried: dict[str, Any] = {"retries": retries, "retry_delay_seconds": 1} if retries else {}
    return goal_flow.with_options(result_storage=storage, **retried)


async def _cancelled_in_prefect(inv: GoalInvocation) -> None:
    """A run the user cancelled (Ctrl-C, a cancelled task) is Cancelled in Prefect, as in agentmesh's record —
    Prefect's engine calls it Crashed, as it would a process that died."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    if inv.run_id is None:
        return
    with contextlib.suppress(Exception):  # best effort: the agentmesh database is the record
        flow_run_id = get_run(components(inv.settings).engine, inv.run_id)["flow_run_id"]
        async with get_client() as client:
            await client.set_flow_run_state(UUID(flow_run_id), Cancelled(message="cancelled by the user"), force=True)


def _check(spec: GraphSpec) -> None:
    spec.builder  # noqa: B018  (import errors surface before Prefect starts)
