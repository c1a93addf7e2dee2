"""One full offline goal on PostgreSQL: the run, its audit, its model journal and its LangGraph checkpoints
land in PostgreSQL (nothing in SQLite under the home)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

import agentmesh
from agentmesh.core.settings import Settings

pytestmark = pytest.mark.postgres


def test_an_offline_goal_on_postgres(home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTMESH_DATABASE_URL", postgres_url)
    settings = Settings(model="offline", node_retries=0)
    assert settings.resolved_database_url == postgres_url

    result = agentmesh.run_goal("checkout-api p95 is at 900 ms; bring it under 300 ms without doubling cost",
                                settings=settings)

    assert result["status"] == "done", result["error"]
    assert result["model"] == {"name": "offline", "offline": True}
    run_id = result["run_id"]
    with psycopg.connect(postgres_url) as conn:
        status, decision = conn.execute("SELECT status, decision FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        audited = conn.execute("SELECT tool, status FROM tool_calls WHERE run_id = %s ORDER BY started",
                               (run_id,)).fetchall()
        journalled = conn.execute("SELECT count(*) FROM model_calls WHERE run_id = %s", (run_id,)).fetchone()[0]
        steps = conn.execute("SELECT node, status FROM steps WHERE run_id = %s", (run_id,)).fetchall()
        checkpoints = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (run_id,)).fetchone()[0]
        writes = conn.execute("SELECT count(*) FROM checkpoint_writes WHERE thread_id = %s", (run_id,)).fetchone()[0]
        replicas = dict(conn.execute("SELECT name, replicas FROM world_services").fetchall())

    assert status == "done" and decision["summary"] == result["decision"]["summary"]
    assert audited, "the offline mesh calls tools"
    # Parallel steps interleave their calls, so the audit's time order need not follow the steps' order.
    assert sorted((c["tool"], c["status"]) for s in result["steps"] for c in s["tool_calls"]) == sorted(map(tuple, audited))
    assert journalled == result["usage"]["model_calls"] > 0
    assert {node for node, _ in steps} >= {"plan", "review", "decide"}
    assert all(state == "done" for _, state in steps)
    assert checkpoints > 0 and writes > 0
    # The world it acted on is the PostgreSQL one too.
    for action in result["decision"]["actions"]:
        if action["tool"] == "scale_service":
            assert replicas[action["args"]["service"]] == action["args"]["replicas"]
    assert not (home / "agentmesh.db").exists()
    assert not (home / "checkpoints.sqlite").exists()
