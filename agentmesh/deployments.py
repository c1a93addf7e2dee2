"""Scheduled goals: Prefect deployments of the goal flow (and of the evolution flow, `agentmesh evolve --schedule`).

``goal_flow`` (``agentmesh.runtime.goal``) is the flow every goal runs as (``agentmesh run`` calls it directly); a
deployment names it by module path (``agentmesh.runtime.goal:goal_flow``), so a worker or ``agentmesh deploy
--serve`` on any machine with agentmesh installed can run it. Prefect's embedded (ephemeral) server never runs schedules: deploying
needs a running server — agentmesh's local one (the default) or ``PREFECT_API_URL``. A deployment without a schedule
is run on demand (``agentmesh deploy run NAME``, ``prefect deployment run``).

Secrets never travel with a deployment: its parameters are the goal and the graph, and its one job variable is the
heartbeat frequency (below). A worker's flow runs take the database URL, the API key and the storage credentials from the worker's own environment
(a process worker's flow runs inherit it), and run with the worker's own interpreter (Prefect's process worker
starts ``sys.executable -m prefect.engine``; the pull step of ``prefect.yaml``, ``check_install`` below, runs in it).

A goal whose worker dies finishes by itself (``ensure_recovery``, set up by ``agentmesh deploy --work-pool`` and
``agentmesh prefect automations``): its flow run sends Prefect heartbeats (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``,
a job variable of the deployment, not a secret); one automation on the server marks a goal's flow run Crashed when
its heartbeats stop for ``dead_worker_s``, the way Prefect's zombie-flow recipe does, and another puts a crashed
goal run of a deployment back on its work pool (AwaitingRetry). A live worker runs the same flow run again, and the
goal flow finds the run's record: it resumes from the last checkpoint, replaying journalled model replies and
audited tool results, and the dead process's lease no longer holds it (``agentmesh.persistence.owner``). A goal
whose flow run keeps dying stops after ``goal_restarts`` restarts (``agentmesh.runtime.goal``).
"""

from __future__ import annotations

import os
from typing import Any

from agentmesh.core.exceptions import NotFoundError, UserError
from agentmesh.core.settings import get_settings
from agentmesh.evolution.flow import FLOW_NAME as EVOLVE_FLOW
from agentmesh.runtime.goal import FLOW_NAME, goal_flow
from agentmesh.runtime.graphs import get_graph
from agentmesh.runtime.prefect import configure_prefect

__all__ = ["HEARTBEAT_S", "check_install", "create_deployment", "ensure_recovery", "list_deployments", "run_now", "serve",
           "set_paused"]

HEARTBEAT_S = 30
"""Seconds between the heartbeats of a deployed goal's flow run (Prefect's minimum; its default is 180)."""
RECOVERY = ("agentmesh: crash goal runs whose worker died", "agentmesh: put crashed goal runs back on their pool")


def check_install() -> dict[str, str]:
    """The pull step of ``prefect.yaml``: run by a flow run before its flow, in the worker's own interpreter, it
    fails at once with Prefect's "No module named 'agentmesh'" where agentmesh is not installed."""
    import sys
    from importlib.metadata import version

    return {"agentmesh": version("agentmesh"), "python": sys.executable}


def _require_server() -> None:
    configure_prefect(get_settings())
    if not os.environ.get("PREFECT_API_URL"):
        raise UserError(
            "Prefect's embedded server never runs schedules: start one (`prefect server start`) and set "
            "PREFECT_API_URL, or leave AGENTMESH_PREFECT=local so agentmesh runs its own"
        )


def _deployment_options(name: str, *, goal: str, graph: str, cron: str | None, interval: float | None) -> dict[str, Any]:
    from prefect.deployments.runner import EntrypointType

    if not goal.strip():
        raise UserError("--goal is empty: say what the scheduled run should do")
    if cron is not None and interval is not None:
        raise UserError("give one of --cron EXPR or --interval SECONDS, not both (neither: runs on demand only)")
    if interval is not None and interval < 1:
        raise UserError("--interval must be at least 1 second")
    if cron is not None:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=cron)
        except ValueError:
            raise UserError(f"--cron {cron!r} is not a cron expression: five fields, minute hour day-of-month "
                            "month day-of-week, e.g. '*/15 * * * *' (every 15 minutes)") from None
    return dict(
        name=name, cron=cron, interval=interval, parameters={"goal": goal, "graph": graph},
        entrypoint_type=EntrypointType.MODULE_PATH, tags=["agentmesh", f"graph:{graph}"],
        description=f"agentmesh goal on graph {graph}: {goal[:200]}",
    )


async def create_deployment(name: str, *, goal: str, graph: str, cron: str | None = None,
                            interval: float | None = None, work_pool: str | None = None) -> str:
    """Create (or update) a deployment; returns its id. Without a work pool, `agentmesh deploy --serve` runs it."""
    get_graph(graph, get_settings().graphs_paths)
    options = _deployment_options(name, goal=goal, graph=graph, cron=cron, interval=interval)  # before a server
    _require_server()
    deployment = await goal_flow.ato_deployment(**options)
    if work_pool:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            try:
                await client.read_work_pool(work_pool)
            except Exception:
                raise NotFoundError(f"no work pool {work_pool!r}: `prefect work-pool create {work_pool} --type process`") from None
        deployment.work_pool_name = work_pool
        deployment.job_variables = {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)}}
        await ensure_recovery()
    return str(await deployment.apply())  # type: ignore[misc]  # Prefect's sync/async dispatch


async def ensure_recovery() -> list[str]:
    """Create (or update) the two automations that finish goals whose worker died; returns their names.

    The first is Prefect's zombie-flow recipe for goal runs: a heartbeat not followed, within ``dead_worker_s``, by
    another heartbeat or a state change → Crashed. The second puts a crashed goal run that a deployment started back
    on its work pool (AwaitingRetry); a run started in a process (``agentmesh run``) has no pool to go back to, and
    is resumed with ``agentmesh runs resume``."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    _require_server()
    dead_after = get_settings().dead_worker_s
    goal_runs = ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"})
    goal_flow = ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": FLOW_NAME})
    crash = Automation(
        name=RECOVERY[0], description=f"A goal's flow run sent no heartbeat for {dead_after:g} s: its worker died.",
        trigger=EventTrigger(
            match=goal_runs, match_related=goal_flow, for_each={"prefect.resource.id"},
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{state}" for state in (
                "Completed", "Failed", "Cancelled", "Crashed", "Cancelling", "Paused", "Suspended", "AwaitingRetry",
                "Scheduled", "Late"))},
            posture=Posture.Proactive, threshold=1, within=timedelta(seconds=dead_after)),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, name=None, force=False, message=(
            f"no heartbeat for {dead_after:g} s: the worker running this goal is presumed dead"))],
    )
    retry = Automation(
        name=RECOVERY[1], description="A deployed goal whose flow run crashed resumes on a live worker of its pool.",
        trigger=EventTrigger(
            match=goal_runs, match_related=[goal_flow, ResourceSpecification({"prefect.resource.role": "deployment"})],
            for_each={"prefect.resource.id"}, expect={"prefect.flow-run.Crashed"}, posture=Posture.Reactive,
            threshold=1, within=timedelta(0)),
        actions=[ChangeFlowRunState(state=StateType.SCHEDULED, name="AwaitingRetry", force=True, message=(
            "crashed: back on the work pool; a live worker resumes the goal from its last checkpoint"))],
    )
    for automation in (crash, retry):
        try:
            found = await Automation.aread(name=automation.name)
        except ValueError:
            await automation.acreate()
        else:
            automation.id = found.id
            await automation.aupdate()
    return [crash.name, retry.name]


def serve(names: list[str] | None = None, *, limit: int | None = 2) -> None:
    """Serve the agentmesh deployments (all, or the named ones) from this process until interrupted, running
    at most ``limit`` goals at once (a laptop's two cores are not a cluster)."""
    import asyncio

    from prefect import serve as prefect_serve

    _require_server()
    rows = asyncio.run(list_deployments())
    chosen = [r for r in rows if not r["work_pool"] and (not names or r["name"] in names)]
    if not chosen:
        raise UserError("no deployments to serve: create one with `agentmesh deploy NAME --goal ... --interval 3600`")
    deployments = [_served(r) for r in chosen]
    prefect_serve(*deployments, print_starting_message=True, limit=limit)  # type: ignore[arg-type]


def _served(row: dict[str, Any]) -> Any:
    if row["flow"] == EVOLVE_FLOW:
        from prefect.deployments.runner import EntrypointType

        from agentmesh.evolution.flow import evolve_flow  # a deployment's flow, imported when served

        return evolve_flow.to_deployment(
            name=row["name"], cron=row["cron"], interval=row["interval"], parameters=row["parameters"],
            entrypoint_type=EntrypointType.MODULE_PATH, tags=["agentmesh", "evolve"])
    return goal_flow.to_deployment(**_deployment_options(
        row["name"], goal=row["parameters"]["goal"], graph=row["parameters"].get("graph", "mesh"),
        cron=row["cron"], interval=row["interval"]))


async def list_deployments() -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    _require_server()
    async with get_client() as client:
        found = [(name, d) for name in (FLOW_NAME, EVOLVE_FLOW)
                 for d in await client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[name])))]
    rows = []
    for flow_name, d in found:
        schedule: Any = d.schedules[0].schedule if d.schedules else None
        rows.append({
            "id": str(d.id), "name": d.name, "flow": flow_name, "paused": d.paused, "work_pool": d.work_pool_name,
            "parameters": d.parameters, "cron": getattr(schedule, "cron", None),
            "interval": schedule.interval.total_seconds() if getattr(schedule, "interval", None) else None,
        })
    return rows


async def _find(name: str) -> dict[str, Any]:
    for row in await list_deployments():
        if row["name"] == name:
            return row
    raise NotFoundError(f"no deployment {name!r}; `agentmesh deploy list` shows them")


async def set_paused(name: str, paused: bool) -> None:
    from prefect.client.orchestration import get_client

    row = await _find(name)
    async with get_client() as client:
        await (client.pause_deployment if paused else client.resume_deployment)(row["id"])


async def run_now(name: str) -> str:
    """Start a run of a deployment now (a worker or `deploy --serve` executes it); returns the flow run id."""
    from prefect.deployments import run_deployment

    row = await _find(name)
    flow_run = await run_deployment(f"{row['flow']}/{name}", timeout=0)  # type: ignore[misc]
    return str(flow_run.id)
