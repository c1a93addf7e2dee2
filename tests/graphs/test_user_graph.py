"""A user's own tool, agent and graph, in a folder outside the package (the README's example copied to a tmp
folder): every node is a Prefect task named for it and tagged with its role, the policy refuses what it must,
and the audit records every call — with no agentmesh code in the user's graph beyond the public API."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from agentmesh import Settings, arun_goal
from agentmesh.persistence.audit import list_calls
from agentmesh.persistence.database import get_engine

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_graph"


async def _task_runs(flow_run_id: str, expected: int) -> list:
    give_up = time.monotonic() + 20
    async with get_client() as client:
        while True:  # the task runs' final states reach the server asynchronously
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if sum(1 for t in runs if t.state and t.state.is_completed()) >= expected or time.monotonic() > give_up:
                return runs
            await asyncio.sleep(0.2)


async def test_a_user_graph_outside_the_package_gets_tasks_policy_and_audit(home: Path, tmp_path: Path) -> None:
    user = tmp_path / "user_project"
    shutil.copytree(EXAMPLE / "tools", user / "tools")
    shutil.copytree(EXAMPLE / "graphs", user / "graphs")
    settings = Settings(home=home, tools_paths=[user / "tools"], graphs_paths=[user / "graphs"])

    result = await arun_goal("Restock SKU-1, SKU-2 and SKU-3 up to 40 units each", graph="restock",
                             settings=settings, approvals="auto")

    assert result["status"] == "done", result.get("error")
    assert result["decision"]["outcome"]
    # Node as task: one completed task run per node, named for it, tagged with the node's role.
    task_runs = await _task_runs(result["flow_run_id"], expected=3)
    tags = {t.name.split("-")[0]: set(t.tags) for t in task_runs}
    assert {"check", "reorder", "decide"} <= set(tags)
    assert {"analyst", "agentmesh"} <= tags["check"] and "optimizer" in tags["reorder"] and "strategist" in tags["decide"]
    assert {s["prefect_task_run_id"] for s in result["steps"]} <= {str(t.id) for t in task_runs}
    # Policy: the user's own limit refuses the 36-unit reorder; the others go through.
    calls = list_calls(get_engine(settings.resolved_database_url), result["run_id"])
    reorders = {c.args["sku"]: c for c in calls if c.tool == "reorder_stock"}
    assert reorders["SKU-1"].status == "refused" and "buyer" in (reorders["SKU-1"].reason or "")
    assert reorders["SKU-2"].status == reorders["SKU-3"].status == "ok"
    # Audit: every call of the run, reads included, with the agent that made it.
    assert [(c.tool, c.agent) for c in calls][:3] == [("stock_level", "analyst")] * 3
    assert all(c.risk == "write" for c in calls if c.tool == "reorder_stock")


async def test_the_role_a_user_tool_allows_is_enforced(home: Path, tmp_path: Path) -> None:
    """reorder_stock is for the optimizer only: an analyst's call is refused by the gateway and audited."""
    user = tmp_path / "user_project"
    shutil.copytree(EXAMPLE / "tools", user / "tools")
    (user / "graphs").mkdir()
    (user / "graphs" / "langgraph.json").write_text('{"graphs": {"sneaky": "./sneaky.py:graph"}}')
    (user / "graphs" / "sneaky.py").write_text(
        '"""An analyst that tries to reorder."""\n'
        "from typing import TypedDict\nfrom langgraph.graph import END, START, StateGraph\n"
        "from agentmesh import use_tool\n\n"
        "class S(TypedDict, total=False):\n    goal: str\n    answer: dict\n\n"
        "async def sneak(state: S) -> dict:\n"
        "    return {'answer': await use_tool('reorder_stock', role='analyst', sku='SKU-1', quantity=1)}\n\n"
        "graph = StateGraph(S)\ngraph.add_node('sneak', sneak, metadata={'agent': 'analyst'})\n"
        "graph.add_edge(START, 'sneak')\ngraph.add_edge('sneak', END)\n")
    settings = Settings(home=home, tools_paths=[user / "tools"], graphs_paths=[user / "graphs"])
    result = await arun_goal("reorder", graph="sneaky", settings=settings, approvals="auto")
    assert result["status"] == "done"
    (call,) = list_calls(get_engine(settings.resolved_database_url), result["run_id"])
    assert call.status == "refused" and "analyst" in (call.reason or "")


async def test_a_user_tool_waits_for_approval_when_the_users_policy_asks(home: Path, tmp_path: Path) -> None:
    """Approvals come with the gateway too: the user's policy names reorder_stock, so each reorder pauses the
    run until a person answers; the verdicts and approvers are in the audit."""
    from agentmesh.gateway.policy import DEFAULT_POLICY_FILE
    from agentmesh.runtime.approvals import aapprove

    user = tmp_path / "user_project"
    shutil.copytree(EXAMPLE / "tools", user / "tools")
    shutil.copytree(EXAMPLE / "graphs", user / "graphs")
    home.mkdir(parents=True)
    (home / "policy.toml").write_text(DEFAULT_POLICY_FILE.read_text().replace(
        "approval_required = []", 'approval_required = ["reorder_stock"]'))
    settings = Settings(home=home, tools_paths=[user / "tools"], graphs_paths=[user / "graphs"])

    paused = await arun_goal("Restock SKU-1, SKU-2 and SKU-3 up to 40 units each", graph="restock", settings=settings)
    assert paused["status"] == "waiting_approval"
    (first,) = paused["pending_approvals"]
    final = await aapprove(paused["run_id"], first["id"], approved=False, approver="alice", settings=settings,
                           approvals="auto")
    assert final["status"] == "done", final.get("error")
    reorders = [c for c in list_calls(get_engine(settings.resolved_database_url), paused["run_id"])
                if c.tool == "reorder_stock"]
    assert reorders[0].status == "rejected" and reorders[0].approver == "alice"
    assert len(reorders) == 3 and all(c.approver and c.approver != "alice" for c in reorders[1:])


async def test_a_plain_stategraph_runs_durably_with_a_task_per_node(home: Path, tmp_path: Path) -> None:
    """The plain LangGraph graph of the example (no agentmesh import) runs as a goal: one task run per node."""
    user = tmp_path / "user_project"
    shutil.copytree(EXAMPLE / "graphs", user / "graphs")
    settings = Settings(home=home, graphs_paths=[user / "graphs"])
    result = await arun_goal("count these four words", graph="plain", settings=settings)
    assert result["status"] == "done", result.get("error")
    assert result["decision"]["summary"] == "The goal has 4 words."
    names = {t.name.split("-")[0] for t in await _task_runs(result["flow_run_id"], expected=2)}
    assert {"count", "summarise"} <= names


async def test_a_user_graph_never_creates_or_seeds_the_sample_world(home: Path, tmp_path: Path) -> None:
    """The sample operations world is a plug-in: a run of the user's restock graph in a fresh home, with the
    plug-in enabled as by default, leaves no world table, world row or dataset file behind."""
    from sqlalchemy import inspect

    user = tmp_path / "user_project"
    shutil.copytree(EXAMPLE / "tools", user / "tools")
    shutil.copytree(EXAMPLE / "graphs", user / "graphs")
    settings = Settings(home=home, tools_paths=[user / "tools"], graphs_paths=[user / "graphs"])
    assert settings.plugins == ["operations"]

    result = await arun_goal("Restock SKU-1, SKU-2 and SKU-3 up to 40 units each", graph="restock",
                             settings=settings, approvals="auto")

    assert result["status"] == "done", result.get("error")
    tables = set(inspect(get_engine(settings.resolved_database_url)).get_table_names())
    assert {"runs", "steps", "tool_calls"} <= tables  # the framework's own records are there
    assert not [t for t in tables if t.startswith("world_")], tables
    assert not (home / "world").exists()
    # The same home, once a goal uses the world's tools, gets the world (so the check above could fail).
    world_goal = await arun_goal("how is checkout-api doing?", settings=settings, approvals="auto")
    assert world_goal["status"] == "done"
    assert "world_services" in set(inspect(get_engine(settings.resolved_database_url)).get_table_names())
