"""kill -9 a run that has already acted, resume it, and check that every side effect happened once."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter

import pytest
from durability_helpers import AGENTMESH, cli_env, loads, query, run_cli, wait_for

GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"


def _ops_calls(home):  # type: ignore[no-untyped-def]
    return query(home, "SELECT tool_call_id, tool, status FROM tool_calls WHERE tool = 'scale_service'")


@pytest.mark.parametrize("kill_after", ["write_done", "write_started"])
def test_kill_9_after_a_side_effect_then_resume(home, slow_model, kill_after):  # type: ignore[no-untyped-def]
    result = _kill_and_resume(cli_env(home, slow_model), home, kill_after)
    assert result["status"] == "done" and result["decision"]["actions"]


def test_kill_9_then_resume_on_postgres(home, slow_model, postgres_url):  # type: ignore[no-untyped-def]
    """The same with the agentmesh database and LangGraph's checkpointer on PostgreSQL."""
    env = cli_env(home, slow_model, AGENTMESH_DATABASE_URL=postgres_url)
    _kill_and_resume(env, postgres_url, "write_done")
    assert not (home / "agentmesh.db").exists() and not (home / "checkpoints.sqlite").exists()
    assert query(postgres_url, "SELECT count(*) FROM checkpoints")[0][0] > 0


def _kill_and_resume(env, home, kill_after):  # type: ignore[no-untyped-def]
    """Kill `agentmesh run` with SIGKILL at ``kill_after``, resume it, check nothing ran twice; the resumed run."""
    assert run_cli("world", "init", env=env).returncode == 0
    process = subprocess.Popen([*AGENTMESH, "run", "--json", GOAL], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        if kill_after == "write_done":
            wait_for(lambda: any(r.status == "ok" for r in _ops_calls(home)), what="a completed scale_service")
        else:
            # The audit record is written before the side effect: kill between the two writes' neighbours.
            wait_for(lambda: _ops_calls(home), what="a scale_service audit record")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    run_id, status = query(home, "SELECT run_id, status FROM runs")[0]
    assert status == "running"  # unfinished, and listed as such
    listed = loads(run_cli("runs", "list", "--json", env=env).stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "running")]
    effects_before = query(home, "SELECT key FROM world_effects")

    resumed = run_cli("runs", "resume", run_id, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    result = loads(resumed.stdout)
    assert result["status"] == "done" and result["decision"]["actions"]

    # Every tool call id was executed at most once: one audit record each, one world effect per write.
    audit = query(home, "SELECT tool_call_id, tool, status FROM tool_calls")
    assert len({r.tool_call_id for r in audit}) == len(audit)
    effects = [r.key for r in query(home, "SELECT key FROM world_effects")]
    assert len(effects) == len(set(effects))
    assert set(r.key for r in effects_before) <= set(effects)
    scales = [r for r in audit if r.tool == "scale_service" and r.status == "ok"]
    assert len(scales) == 1, scales
    # The service moved once: from the sample's 4 replicas to what the one recorded call asked.
    (replicas,) = query(home, "SELECT replicas FROM world_services WHERE name = 'checkout-api'")[0]
    assert replicas == result["decision"]["actions"][0]["args"]["replicas"]
    assert Counter(a["tool"] for a in result["decision"]["actions"])["scale_service"] == 1
    # The resumed run replayed journalled model replies instead of asking again for the finished steps.
    (calls,) = query(home, "SELECT count(*) FROM model_calls WHERE run_id = :r", r=run_id)[0]
    assert result["usage"]["model_calls"] == calls
    # Each journalled reply has its model_call event and each audit record its tool_call event, written in the same
    # transaction, so the kill left none without the other (a call killed before its reply came has neither).
    (model_events,) = query(home, "SELECT count(*) FROM events WHERE run_id = :r AND type = 'model_call'", r=run_id)[0]
    assert model_events == calls
    (call_events,) = query(home, "SELECT count(*) FROM events WHERE run_id = :r AND type = 'tool_call'", r=run_id)[0]
    assert call_events == len(audit)
    return result
