"""The offline model end to end: goals phrased as a user would, the run JSON contract, the world changed to fit
the goal, and the run read back from the Prefect API (one completed task run per executed node).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from run_contract import assert_run_contract, tool_calls

from agentmesh import Settings, arun_goal
from agentmesh.plugins.operations.world import World

OPS_GOALS = [
    "checkout is crawling — p95 around 900ms. Get it below 300 without doubling spend",
    "Our checkout service is slow, customers are abandoning carts. p95 needs to be under 300ms; spend can grow but "
    "not double.",
]
DATA_GOALS = [
    ("Can you clean up the customers dataset? Lots of dupes and blank emails", "customers"),
    ("Our order data is a mess: duplicated orders and weird amounts. Please tidy it.", "orders"),
]
TICKET_GOALS = [
    ("Go through the open support tickets and sort out the urgent ones, refunds where fair", {"urgent"}),
    ("customers are angry - work the high priority tickets in the support queue, refund people if it's fair",
     {"urgent", "high"}),
]


def _world(home: Path) -> World:
    world = World.from_settings(Settings(home=home))
    world.ensure_initialised()
    return world


def _service(world: World, name: str) -> dict[str, Any]:
    return next(s for s in world.list_services()["services"] if s["name"] == name)


@pytest.mark.parametrize("goal", OPS_GOALS)
async def test_ops_goal_scales_the_named_service_within_budget(home: Path, goal: str) -> None:
    world = _world(home)
    before = _service(world, "checkout-api")

    result = await arun_goal(goal)

    assert_run_contract(result, goal=goal)
    assert result["status"] == "done"
    assert result["model"] == {"name": "offline", "offline": True}
    scaled = tool_calls(result, "scale_service")
    assert scaled, "an ops goal about a slow service should scale it"
    assert {c["args"]["service"] for c in scaled} == {"checkout-api"}
    assert not tool_calls(result, "clean_dataset", "resolve_ticket", "escalate_ticket", status=None)
    after = _service(world, "checkout-api")
    assert after["replicas"] == scaled[-1]["args"]["replicas"] != before["replicas"]
    assert after["p95_ms"] < 300 < before["p95_ms"]
    assert after["hourly_cost"] < 2 * before["hourly_cost"], "the goal said: without doubling spend"
    assert [a["tool"] for a in result["decision"]["actions"]] == ["scale_service"] * len(scaled)


@pytest.mark.parametrize(("goal", "dataset"), DATA_GOALS)
async def test_data_goal_cleans_the_named_dataset_into_a_new_version(home: Path, goal: str, dataset: str) -> None:
    world = _world(home)
    versions_before = {d["name"]: d["latest_version"] for d in world.list_datasets()["datasets"]}
    assert world.profile_dataset(dataset)["duplicate_rows"] > 0

    result = await arun_goal(goal)

    assert_run_contract(result, goal=goal)
    assert result["status"] == "done"
    cleaned = tool_calls(result, "clean_dataset")
    assert cleaned, "a data goal about a messy dataset should clean it"
    assert {c["args"]["dataset"] for c in cleaned} == {dataset}
    versions_after = {d["name"]: d["latest_version"] for d in world.list_datasets()["datasets"]}
    assert versions_after == {**versions_before, dataset: versions_before[dataset] + len(cleaned)}
    assert cleaned[-1]["result"]["version"] == versions_after[dataset]
    assert world.storage.exists(world.dataset_file(dataset, versions_before[dataset])), "cleaning never overwrites"
    assert world.profile_dataset(dataset)["duplicate_rows"] == 0, "the goal asked for the duplicates to go"
    assert not tool_calls(result, "scale_service", "resolve_ticket", "escalate_ticket", status=None)


@pytest.mark.parametrize(("goal", "priorities"), TICKET_GOALS)
async def test_tickets_goal_resolves_or_escalates_real_tickets_within_the_refund_cap(
    home: Path, goal: str, priorities: set[str]
) -> None:
    world = _world(home)
    cap = world.limits.refund_cap_usd

    result = await arun_goal(goal)

    assert_run_contract(result, goal=goal)
    assert result["status"] == "done"
    acted = tool_calls(result, "resolve_ticket", "escalate_ticket")
    assert acted, "a tickets goal should resolve or escalate tickets"
    for call in acted:
        ticket = world.get_ticket(call["args"]["ticket_id"])  # raises NotFoundError for an invented id
        assert ticket["priority"] in priorities, (call, ticket["priority"])
        expected = "resolved" if call["tool"] == "resolve_ticket" else "escalated"
        assert ticket["status"] == expected
        assert ticket["refund_total_usd"] <= cap
        assert call["args"].get("refund_usd", 0) <= cap
    assert not tool_calls(result, "resolve_ticket", "escalate_ticket", status="refused")
    assert not tool_calls(result, "scale_service", "clean_dataset", status=None)


# -- Prefect read-back ---------------------------------------------------------------------------------------


async def _read_back(result: dict[str, Any], *, deadline_s: float = 60.0) -> tuple[Any, list[Any], list[Any]]:
    """The flow run, its task runs and its artifacts, from the Prefect API the run says it is recorded in.

    Prefect records task-run states from client events, asynchronously; poll until every task run the
    result names is COMPLETED (or the deadline passes and the assertions below say what is missing).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    flow_run_id = UUID(result["flow_run_id"])
    expected = {s["prefect_task_run_id"] for s in result["steps"]}
    updates = {PREFECT_API_URL: result["prefect_api_url"]} if result["prefect_api_url"] else {}
    with temporary_settings(updates=updates):
        async with get_client() as client:
            give_up = time.monotonic() + deadline_s
            while True:
                flow_run = await client.read_flow_run(flow_run_id)
                task_runs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
                )
                completed = {str(t.id) for t in task_runs if t.state and t.state.is_completed()}
                if (completed >= expected and flow_run.state.is_final()) or time.monotonic() > give_up:
                    break
                await asyncio.sleep(0.2)
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
    return flow_run, task_runs, artifacts


async def test_prefect_shows_one_completed_task_run_per_executed_node(home: Path) -> None:
    result = await arun_goal(OPS_GOALS[0])
    assert result["status"] == "done"
    assert result["prefect_api_url"], "the default (local) Prefect server records runs at a URL"

    flow_run, task_runs, artifacts = await _read_back(result)

    assert str(flow_run.id) == result["flow_run_id"] == result["run_id"]
    assert flow_run.state.is_completed(), flow_run.state
    assert len(task_runs) == len(result["steps"]), [t.name for t in task_runs]
    by_id = {str(t.id): t for t in task_runs}
    for step in result["steps"]:
        task_run = by_id[step["prefect_task_run_id"]]
        assert task_run.state.is_completed(), (step["node"], task_run.state)
        assert task_run.name.startswith(step["node"]), (task_run.name, step["node"])
        assert (step["agent"] or "router") in task_run.tags
    roles = {s["agent"] for s in result["steps"]}
    assert {"strategist", "analyst", "optimizer"} <= roles

    keys = {a.key for a in artifacts}
    short = result["run_id"][:8]
    assert {f"decision-{short}", f"tool-calls-{short}"} <= keys, keys
    table = next(a for a in artifacts if a.key == f"tool-calls-{short}")
    assert "scale_service" in str(table.data)
