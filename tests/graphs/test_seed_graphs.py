"""The seed systems as graphs: each runs its example goal end to end with the offline model, ends with a
decision, and does what its description says to the world."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from agentmesh import Settings, UserError, arun_goal
from agentmesh.memory import add_feedback
from agentmesh.persistence.database import get_engine
from agentmesh.plugins.operations.world import World
from agentmesh.plugins.operations.world import _tables as world_tables
from agentmesh.runtime.graphs import get_graph, list_graphs

SEED_GRAPHS = ["self_healing", "data_pipeline", "customer_service", "infra_management", "collaboration", "learning"]


def _world(home: Path) -> World:
    world = World.from_settings(Settings(home=home))
    world.ensure_initialised()
    return world


def _service(world: World, name: str) -> dict[str, Any]:
    return next(s for s in world.list_services()["services"] if s["name"] == name)


def _calls(result: dict[str, Any], tool: str, status: str | None = "ok") -> list[dict[str, Any]]:
    return [c for s in result["steps"] for c in s["tool_calls"] if c["tool"] == tool
            and (status is None or c["status"] == status)]


async def _run(name: str, home: Path, goal: str | None = None) -> dict[str, Any]:
    result = await arun_goal(goal or get_graph(name).example_goal, graph=name, settings=Settings(home=home),
                             approvals="auto")
    assert result["status"] == "done", result.get("error")
    assert result["decision"]["summary"] and result["decision"]["outcome"]
    return result


def test_the_cli_lists_every_seed_graph_and_shows_its_structure() -> None:
    import json

    from typer.testing import CliRunner

    from agentmesh.interfaces.cli import app

    listed = CliRunner().invoke(app, ["graphs", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    for name in ["mesh", *SEED_GRAPHS]:
        assert rows[name]["description"] and rows[name]["example_goal"], name
    shown = CliRunner().invoke(app, ["graphs", "show", "self_healing"])
    assert shown.exit_code == 0 and shown.stdout.startswith("---") and "graph TD;" in shown.stdout
    assert all(f"\t{node}(" in shown.stdout for node in ("monitor", "repair", "verify", "escalate", "decide"))
    bad = CliRunner().invoke(app, ["graphs", "show", "no-such-graph"])
    # A UserError: the installed `agentmesh` prints its one line and exits 2.
    assert isinstance(bad.exception, UserError) and "no graph 'no-such-graph'" in str(bad.exception)


def test_every_seed_graph_is_listed_with_description_goal_and_structure() -> None:
    graphs = list_graphs()
    for name in SEED_GRAPHS:
        spec = graphs[name]
        assert spec.description and spec.example_goal, name
        mermaid = spec.builder.compile().get_graph().draw_mermaid()
        assert "__start__" in mermaid and "__end__" in mermaid, name


@pytest.mark.parametrize("name", ["mesh", "learning"])
async def test_the_mesh_and_learning_run_their_example_goals_to_a_decision(home: Path, name: str) -> None:
    # The other graphs' example goals run in their own tests below.
    world = _world(home)
    result = await _run(name, home)
    if name == "mesh":  # checkout-api is overloaded in the default world: scaled under 300 ms
        assert result["decision"]["outcome"] == "achieved" and _calls(result, "scale_service")
        assert _service(world, "checkout-api")["p95_ms"] <= 300
    else:  # payments-api already meets 250 ms at the default load: read, not changed
        assert result["decision"]["outcome"] == "no_action_needed" and not _calls(result, "scale_service", None)
        assert _service(world, "payments-api")["p95_ms"] <= 250


def _set_service(world: World, name: str, **values: Any) -> None:
    with world.engine.begin() as conn:
        conn.execute(update(world_tables.services).where(world_tables.services.c.name == name).values(**values))


async def test_self_healing_scales_the_overload_and_rolls_back_the_bad_release(home: Path) -> None:
    world = _world(home)
    assert _service(world, "checkout-api")["status"] == "overloaded"
    assert _service(world, "search-api")["status"] == "erroring"
    result = await _run("self_healing", home)
    # Each degraded service gets the repair its metrics point at, and only that one.
    assert {c["args"]["service"] for c in _calls(result, "scale_service", status=None)} == {"checkout-api"}
    assert {c["args"]["service"] for c in _calls(result, "rollback_service", status=None)} == {"search-api"}
    assert not _calls(result, "restart_service", status=None)
    assert world.get_service_metrics("search-api")["deployed_version"] == "v5.1.4"
    assert {s["status"] for s in world.list_services()["services"]} <= {"healthy", "over-provisioned"}
    assert result["decision"]["outcome"] == "achieved" and not world.list_notifications()


async def test_self_healing_restarts_a_leaking_service_instead_of_scaling_it(home: Path) -> None:
    world = _world(home)
    _set_service(world, "auth-api", fault="memory_leak")
    result = await _run("self_healing", home, "auth-api logins are failing; repair it or escalate it.")
    assert [c["args"] for c in _calls(result, "restart_service", status=None)] == [{"service": "auth-api"}]
    assert not _calls(result, "scale_service", status=None) and not _calls(result, "rollback_service", status=None)
    after = world.get_service_metrics("auth-api")
    assert (after["status"], after["replicas"], after["deployed_version"]) == ("healthy", 3, "v4.1.0")
    assert result["decision"]["outcome"] == "achieved"


async def test_self_healing_escalates_what_no_repair_fixes_and_stops(home: Path) -> None:
    world = _world(home)
    _set_service(world, "search-api", releases=[])  # nothing to roll back to
    result = await _run("self_healing", home)
    assert _service(world, "checkout-api")["status"] == "healthy"
    assert not {c["args"]["service"] for c in _calls(result, "scale_service", status=None)} & {"search-api"}
    # search-api errors at any replica count and has no earlier release: the verifier sees it, operators are told.
    notices = world.list_notifications()
    assert any("search-api" in n["message"] and n["severity"] == "warning" for n in notices)
    assert result["decision"]["outcome"] == "partially_achieved"
    assert any("search-api" in r for r in result["decision"]["open_risks"])
    assert [s["node"] for s in result["steps"]].count("repair") <= 2 * 2  # two services, at most two rounds


async def test_data_pipeline_cleans_below_threshold_validates_and_publishes(home: Path) -> None:
    _world(home)
    result = await _run("data_pipeline", home)
    cleaned = {c["args"]["dataset"] for c in _calls(result, "clean_dataset")}
    assert cleaned == {"customers", "orders"}  # sensor_readings scores above 95 and is left alone
    nodes = [s["node"] for s in result["steps"]]
    assert nodes.count("ingest") == 3 and {"transform", "validate", "publish"} <= set(nodes)


async def test_customer_service_resolves_within_policy_and_escalates_outside_it(home: Path) -> None:
    _world(home)
    result = await _run("customer_service", home)
    escalated = {c["args"]["ticket_id"] for c in _calls(result, "escalate_ticket")}
    resolved = {c["args"]["ticket_id"] for c in _calls(result, "resolve_ticket")}
    assert "T-1006" in escalated  # asks $450, above the $200 cap
    assert resolved and not resolved & escalated
    assert all(c["args"].get("refund_usd", 0) <= 200 for c in _calls(result, "resolve_ticket"))


async def test_infra_management_resolves_a_real_conflict_and_records_why(home: Path) -> None:
    world = _world(home)
    result = await _run("infra_management", home)
    conflicts = result["decision"]["conflicts"]
    search = next(c for c in conflicts if c["service"] == "search-api")
    assert {p["agent"] for p in search["proposals"]} == {"cost", "maintenance"}
    assert search["winner"] == "maintenance" and "reliability" in search["why"]
    assert _service(world, "search-api")["replicas"] == 4
    assert "Conflicts resolved" in result["decision"]["rationale"]


async def test_collaboration_records_votes_and_dissent(home: Path) -> None:
    _world(home)
    result = await _run("collaboration", home)
    nodes = {s["node"] for s in result["steps"]}
    assert {f"{k}_{r}" for k in ("propose", "critique", "vote") for r in ("analyst", "optimizer", "innovator")} <= nodes
    # Only the act step may change the world.
    writers = {s["node"] for s in result["steps"] for c in s["tool_calls"] if c["tool"] == "scale_service"}
    assert writers == {"act"}


LESSON_GOAL = "payments-api p95 is too high under the new load; bring it under 250 ms within policy."


def _busy_payments(home: Path) -> World:
    world = _world(home)
    with world.engine.begin() as conn:
        conn.execute(update(world_tables.services).where(world_tables.services.c.name == "payments-api")
                     .values(arrival_rate_rps=130))
    return world


async def test_learning_respects_operator_feedback_that_the_plain_mesh_ignores(home: Path, tmp_path: Path) -> None:
    # Without memory: the mesh scales payments-api to 7 replicas, the count an operator said exhausts the DB.
    plain_home = tmp_path / "plain"
    plain_world = _busy_payments(plain_home)
    await arun_goal(LESSON_GOAL, graph="mesh", settings=Settings(home=plain_home), approvals="auto")
    assert _service(plain_world, "payments-api")["replicas"] > 6

    world = _busy_payments(home)
    engine = get_engine(Settings(home=home).resolved_database_url)
    earlier = await _run("learning", home, "payments-api is slow, scale it up")
    add_feedback(engine, run_id=earlier["run_id"], score=1,
                 note="scaling payments-api above 6 replicas caused DB connection exhaustion")
    with world.engine.begin() as conn:  # back to the busy starting point
        conn.execute(update(world_tables.services).where(world_tables.services.c.name == "payments-api")
                     .values(replicas=4))
    result = await _run("learning", home, LESSON_GOAL)
    step = next(s for s in result["plan"]["steps"] if s["role"] == "optimizer")
    assert "at most 6 replicas" in step["instruction"]
    assert all(c["args"]["replicas"] <= 6 for c in _calls(result, "scale_service", status=None))
    assert _service(world, "payments-api")["replicas"] <= 6


@pytest.mark.parametrize("name", SEED_GRAPHS)
def test_graph_modules_use_only_the_public_api(name: str) -> None:
    source = get_graph(name).path.read_text()
    assert "agentmesh._" not in source and "from agentmesh." not in source


async def test_the_learning_eval_fails_without_memory_and_passes_with_it(tmp_path: Path) -> None:
    from agentmesh.evaluation import EvalOptions, arun_eval, load_scenarios

    (with_memory,) = load_scenarios([Path(__file__).resolve().parents[2] / "evals/learning/payments-lesson.yaml"])
    without = with_memory.model_copy(update={"id": "payments-lesson-on-the-mesh", "graph": "mesh"})
    report = await arun_eval([with_memory, without], EvalOptions(trials=1, concurrency=2, workdir=tmp_path / "eval",
                                                                 settings=Settings(home=tmp_path / "home")))
    by_id = {s["id"]: s for s in report["scenarios"]}
    assert by_id["learning-payments-lesson"]["reward"] == 1.0, by_id["learning-payments-lesson"]["failures"]
    assert by_id["payments-lesson-on-the-mesh"]["reward"] == 0.0
    reasons = " ".join(f["reason"] for f in by_id["payments-lesson-on-the-mesh"]["failures"])
    assert "services.payments-api.replicas" in reasons and "forbidden call scale_service" in reasons
