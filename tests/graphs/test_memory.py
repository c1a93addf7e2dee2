"""Decision memory without a model: feedback is stored, and recall ranks by explainable word overlap."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentmesh import UserError, arun_goal
from agentmesh.core.settings import Settings
from agentmesh.evaluation.report import write_report
from agentmesh.interfaces.cli import app
from agentmesh.memory import EVAL_REPORTS_DIR, add_feedback, eval_outcomes, list_feedback, recall
from agentmesh.persistence.database import get_engine
from agentmesh.persistence.runs import create_run, update_run


def _engine(home: Path):  # type: ignore[no-untyped-def]
    return get_engine(Settings(home=home).resolved_database_url)


def _done_run(engine, run_id: str, goal: str, summary: str) -> None:  # type: ignore[no-untyped-def]
    create_run(engine, run_id=run_id, flow_run_id=run_id, goal=goal, graph="learning", status="running",
               model="offline", offline=True)
    update_run(engine, run_id, status="done", decision={"summary": summary, "outcome": "achieved"})


def test_feedback_from_the_cli_is_recalled_for_a_similar_goal_with_its_reasons(home: Path) -> None:
    engine = _engine(home)
    _done_run(engine, "run-payments-1", "payments-api is slow, scale it up", "Scaled payments-api to 8 replicas.")
    _done_run(engine, "run-orders-1", "clean the orders dataset", "Cleaned orders into version 2.")

    out = CliRunner().invoke(app, ["runs", "feedback", "run-paym", "--score", "1", "--note",
                                   "scaling payments-api above 6 replicas caused DB connection exhaustion"])
    assert out.exit_code == 0, out.output
    (row,) = list_feedback(engine, "run-payments-1")
    assert row["score"] == 1 and row["goal"] == "payments-api is slow, scale it up"

    found = recall(engine, "payments-api p95 is too high; bring it under 250 ms")
    assert found and "DB connection exhaustion" in found[0].text
    assert "payments-api" in found[0].shared
    assert all("orders" not in r.text for r in found)


def test_bad_feedback_is_a_user_error(home: Path) -> None:
    engine = _engine(home)
    _done_run(engine, "run-1", "goal", "done")
    with pytest.raises(UserError):
        add_feedback(engine, run_id="run-1", score=0, note="x")
    with pytest.raises(UserError):
        add_feedback(engine, run_id="run-1", score=3, note="  ")
    out = CliRunner().invoke(app, ["runs", "feedback", "no-such-run", "--score", "3", "--note", "x"])
    assert out.exit_code != 0


def _report(created: str, *scenarios: dict) -> dict:
    """An eval report as ``agentmesh eval run --out`` writes it (the fields memory reads)."""
    return {"version": 1, "created": created, "model": "offline", "trials": 1,
            "summary": {"scenarios": len(scenarios), "mean_reward": 0.0}, "scenarios": list(scenarios)}


def _scenario(sid: str, goal: str, reward: float, *failures: tuple[str, str], purpose: str = "") -> dict:
    return {"id": sid, "suite": "learning", "purpose": purpose, "goal": goal, "reward": reward, "trials": 1,
            "successes": int(reward >= 1), "failures": [{"trial": 1, "component": c, "status": "fail", "reason": r}
                                                        for c, r in failures]}


PAYMENTS_GOAL = "payments-api p95 is too high under the new load; bring it under 250 ms within policy."
SEVEN = ("assertions", "services.payments-api.replicas = 7, wanted <= 6 (above 6 replicas exhausts the DB connections)")


def test_eval_results_are_recalled_with_reward_and_failure_newest_report_first(home: Path) -> None:
    folder = home / EVAL_REPORTS_DIR
    write_report(_report("2026-11-01T10:00:00+00:00",
                         _scenario("payments-load", PAYMENTS_GOAL, 1.0, purpose="an old pass, since superseded"),
                         _scenario("orders-clean", "clean the orders dataset", 1.0)), folder / "old.json")
    write_report(_report("2026-11-20T10:00:00+00:00", _scenario("payments-load", PAYMENTS_GOAL, 0.0, SEVEN)),
                 folder / "new.json")
    (folder / "notes.json").write_text("[1, 2]")  # not a report: skipped
    (folder / "broken.json").write_text("{")

    lines = eval_outcomes([folder])
    assert len(lines) == 2  # payments-load once, from the newer report
    payments = next(line for line in lines if "payments-load" in line)
    assert "reward 0.00 (0/1 trials passed)" in payments and "replicas = 7, wanted <= 6" in payments
    assert "2026-11-20" in payments and "superseded" not in payments

    found = recall(_engine(home), "payments-api latency is high again, bring p95 under 250 ms", eval_reports=[folder])
    assert found and found[0].text == payments and "payments-api" in found[0].shared
    assert all("orders" not in r.text for r in found)
    assert recall(_engine(home), "payments-api latency is high again", eval_reports=[]) == []


async def test_a_failed_eval_shapes_the_learning_graphs_plan(home: Path) -> None:
    write_report(_report("2026-11-20T10:00:00+00:00", _scenario("payments-load", PAYMENTS_GOAL, 0.0, SEVEN)),
                 home / EVAL_REPORTS_DIR / "latest.json")
    result = await arun_goal(PAYMENTS_GOAL, graph="learning", settings=Settings(home=home), approvals="auto")
    assert result["status"] == "done", result.get("error")
    recalled = [e for e in result.get("events", []) if e.get("type") == "memory_recalled"]
    step = next(s for s in result["plan"]["steps"] if s["role"] == "optimizer")
    assert "at most 6 replicas" in step["instruction"], (recalled, step)
