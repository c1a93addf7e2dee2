"""Decision memory without a model: feedback is stored, and recall ranks by explainable word overlap."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentmesh import UserError
from agentmesh.cli import app
from agentmesh.memory import add_feedback, list_feedback, recall
from agentmesh.settings import Settings
from agentmesh.store import create_run, get_engine, update_run


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
