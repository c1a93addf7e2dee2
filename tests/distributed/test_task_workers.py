"""Agent steps on task workers: two `agentmesh worker` processes serve the roles a goal sends out.

The goal's process keeps the flow run, the node tasks and the checkpoints; the analyst's steps run in one
worker process and the optimizer's and innovator's in another, through the same journal and audit. Both
sides share the session's PREFECT_HOME (so one local Prefect server and one result store) and the test's
AGENTMESH_HOME (one SQLite database: enough for processes on one machine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from agentmesh.core.settings import DEFAULT_POLICY_FILE

AGENTMESH = [sys.executable, "-m", "agentmesh"]
GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"
PLACEMENT = {"analyst": 0, "optimizer": 1, "innovator": 1}  # role -> which worker serves it


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, AGENTMESH_HOME=str(home), AGENTMESH_MODEL="offline",
                AGENTMESH_REMOTE_ROLES=json.dumps(sorted(PLACEMENT)))


def _cli(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENTMESH, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _query(home: Path, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(f"sqlite:///{home / 'agentmesh.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a worker and its children (it was started in a new session)."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def workers(home: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two worker processes: one for the analyst, one for the optimizer and the innovator."""
    env = _env(home)
    assert _cli("world", "init", env=env).returncode == 0
    roles: list[list[str]] = [[], []]
    for role, index in PLACEMENT.items():
        roles[index] += ["--role", role]
    started = []
    try:
        for index, args in enumerate(roles):
            with open(home / f"worker{index}.log", "wb") as log:  # the child keeps its own descriptor
                started.append(subprocess.Popen([*AGENTMESH, "worker", *args], env=env, stdout=log, stderr=log,
                                                start_new_session=True))
        deadline = time.monotonic() + 120
        for index, process in enumerate(started):
            while b"serving roles" not in (home / f"worker{index}.log").read_bytes():
                assert process.poll() is None, (home / f"worker{index}.log").read_text()
                assert time.monotonic() < deadline, "a worker did not start"
                time.sleep(0.1)
        yield started
    finally:
        for process in started:
            _stop(process)


def _remote_steps(home: Path, run_id: str) -> list[dict[str, Any]]:
    rows = _query(home, "SELECT data FROM events WHERE run_id = :r AND type = 'remote_step' ORDER BY seq", r=run_id)
    return [r.data if isinstance(r.data, dict) else json.loads(r.data) for r in rows]


def _check_placement(home: Path, run_id: str, workers: list[subprocess.Popen[bytes]]) -> None:
    """Every step of a remote role ran in the worker process serving that role, under the node's step key."""
    steps = _query(home, "SELECT step_key, agent FROM steps WHERE run_id = :r AND agent IN ('analyst', "
                         "'optimizer', 'innovator')", r=run_id)
    assert steps, "the plan gave the workers nothing to do"
    remote = _remote_steps(home, run_id)
    for step in steps:
        ran = [e for e in remote if e["step_key"] == step.step_key]
        assert ran, f"step {step.step_key} ({step.agent}) did not run on a worker"
        expected_pid = workers[PLACEMENT[step.agent]].pid
        assert {int(e["worker"].rsplit(":", 1)[1]) for e in ran} == {expected_pid}, (step, ran)
    # The journal and the audit were written by the workers under the goal's keys: each model call and tool
    # call of a remote role belongs to one of the steps the goal's process recorded.
    keys = {s.step_key for s in steps}
    journal = _query(home, "SELECT step_key FROM model_calls WHERE run_id = :r AND agent IN ('analyst', "
                           "'optimizer', 'innovator')", r=run_id)
    assert journal and {j.step_key.split("#")[0] for j in journal} <= keys
    calls = _query(home, "SELECT step_key, status FROM tool_calls WHERE run_id = :r AND agent IN ('analyst', "
                         "'optimizer', 'innovator')", r=run_id)
    assert calls and {c.step_key for c in calls} <= keys
    assert all(c.status in ("ok", "refused", "invalid", "failed", "rejected") for c in calls), calls


def _prefect_step_runs(flow_run_id: str) -> list[dict[str, Any]]:
    """The background task runs of the goal's flow run, read from the session's local Prefect server.

    A worker reports its task run's states as events, which the server records a moment later: the goal may
    have its result before the server shows the run Completed. So read until every step run is final (or 30 s).
    """
    from agentmesh.runtime.prefect import local_server_state

    state = local_server_state(Path(os.environ["PREFECT_HOME"]))
    assert state, "no local Prefect server recorded under PREFECT_HOME"
    give_up = time.monotonic() + 30
    while True:
        reply = httpx.post(f"{state['url']}/task_runs/filter", timeout=10, json={
            "flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200})
        reply.raise_for_status()
        runs = [r for r in reply.json() if r["task_key"].startswith("agentmesh-agent-step-")]
        final = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
        if (runs and all(r["state_type"] in final for r in runs)) or time.monotonic() > give_up:
            return runs
        time.sleep(0.2)


def test_steps_of_remote_roles_run_on_their_workers(home, workers):  # type: ignore[no-untyped-def]
    done = _cli("run", "--json", GOAL, env=_env(home))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["status"] == "done" and result["decision"]["summary"], result
    run_id = result["run_id"]
    _check_placement(home, run_id, workers)

    # The steps are task runs of the goal's own flow run, completed, each under its role's task key.
    ((flow_run_id,),) = _query(home, "SELECT flow_run_id FROM runs WHERE run_id = :r", r=run_id)
    step_runs = _prefect_step_runs(flow_run_id)
    roles = {s.agent for s in _query(home, "SELECT agent FROM steps WHERE run_id = :r AND agent IN ('analyst', "
                                           "'optimizer', 'innovator')", r=run_id)}
    assert {r["task_key"] for r in step_runs} == {f"agentmesh-agent-step-{role}" for role in roles}
    assert all(r["state_type"] == "COMPLETED" for r in step_runs), [r["state_type"] for r in step_runs]

    # The audit is complete: every recorded call finished, and the decision's actions are the audited ones.
    audit = json.loads(_cli("runs", "audit", run_id, "--json", env=_env(home)).stdout)
    assert audit and all(c["status"] != "running" and c["ended"] for c in audit)
    writes = [c for c in audit if c["tool"] == "scale_service" and c["status"] == "ok"]
    assert len(writes) == 1 and writes[0]["agent"] == "optimizer"


def test_an_approval_on_a_worker_pauses_the_goal_and_resumes_once(home, workers):  # type: ignore[no-untyped-def]
    home.mkdir(parents=True, exist_ok=True)
    (home / "policy.toml").write_text(DEFAULT_POLICY_FILE.read_text().replace(
        "approval_required = []", 'approval_required = ["scale_service"]'))
    env = _env(home)
    paused = _cli("run", "--json", GOAL, env=env)
    assert paused.returncode == 0, paused.stderr[-3000:]
    waiting = json.loads(paused.stdout)
    assert waiting["status"] == "waiting_approval", waiting
    run_id = waiting["run_id"]
    (pending,) = _query(home, "SELECT tool_call_id, agent, status FROM tool_calls WHERE run_id = :r AND "
                              "approval = 'pending'", r=run_id)
    assert (pending.agent, pending.status) == ("optimizer", "pending_approval")
    assert _query(home, "SELECT replicas FROM world_services WHERE name = 'checkout-api'")[0].replicas == 4
    journal_sql = "SELECT step_key, seq, created FROM model_calls WHERE run_id = :r AND agent = 'optimizer'"
    journal_at_pause = set(_query(home, journal_sql, r=run_id))

    approved = _cli("approve", run_id, "--as", "ops-lead", "--json", env=env)
    assert approved.returncode == 0, approved.stderr[-3000:]
    result = json.loads(approved.stdout)
    assert result["status"] == "done", result
    _check_placement(home, run_id, workers)

    scales = _query(home, "SELECT tool_call_id, status, approval, approver, args FROM tool_calls WHERE run_id = :r "
                          "AND tool = 'scale_service'", r=run_id)
    assert [(s.tool_call_id, s.status, s.approval, s.approver) for s in scales] == [
        (pending.tool_call_id, "ok", "approved", "ops-lead")]
    effects = [r.key for r in _query(home, "SELECT key FROM world_effects")]
    assert len(effects) == len(set(effects))
    args = scales[0].args if isinstance(scales[0].args, dict) else json.loads(scales[0].args)
    (replicas,) = _query(home, "SELECT replicas FROM world_services WHERE name = 'checkout-api'")[0]
    assert replicas == args["replicas"] != 4
    # The optimizer's step went to its worker twice — paused, then again with the verdict — and the second
    # time replayed the journal: the model calls made before the pause are the same records, not new ones.
    optimizer_sends = [e for e in _remote_steps(home, run_id) if e["agent"] == "optimizer"]
    assert len(optimizer_sends) >= 2
    assert journal_at_pause and journal_at_pause <= set(_query(home, journal_sql, r=run_id))
