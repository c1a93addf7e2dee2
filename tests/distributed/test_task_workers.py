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
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed_helpers import query as _query
from distributed_helpers import stop

from agentmesh.core.settings import DEFAULT_POLICY_FILE
from agentmesh.testing import OpenAIServer
from agentmesh.testing.offline_responder import offline_responder

AGENTMESH = [sys.executable, "-m", "agentmesh"]
GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"
PLACEMENT = {"analyst": 0, "optimizer": 1, "innovator": 1}  # role -> which worker serves it


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, AGENTMESH_HOME=str(home), AGENTMESH_MODEL="offline",
                AGENTMESH_REMOTE_ROLES=json.dumps(sorted(PLACEMENT)))


def _cli(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENTMESH, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _start_worker(home: Path, name: str, roles: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """An `agentmesh worker` for these roles, in a session of its own, once it serves them (its log: NAME.log)."""
    log_path = home / f"{name}.log"
    with open(log_path, "ab") as log:  # the child keeps its own descriptor
        process = subprocess.Popen([*AGENTMESH, "worker", *[f"--role={r}" for r in roles]], env=env, stdout=log,
                                   stderr=log, start_new_session=True)
    deadline = time.monotonic() + 120
    while b"serving roles" not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise AssertionError(f"worker {name} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return process


@pytest.fixture
def workers(home: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two worker processes: one for the analyst, one for the optimizer and the innovator."""
    env = _env(home)
    assert _cli("world", "init", env=env).returncode == 0
    roles: list[list[str]] = [[], []]
    for role, index in PLACEMENT.items():
        roles[index].append(role)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for index, names in enumerate(roles):
            started.append(_start_worker(home, f"worker{index}", names, env))
        yield started
    finally:
        for process in started:
            stop(process)


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
    _check_runs_show(home, run_id, workers)


def _check_runs_show(home: Path, run_id: str, workers: list[subprocess.Popen[bytes]]) -> None:
    """`runs show` names the process that ran each step: a remote role's its worker's, the others the goal's."""
    env = dict(_env(home), COLUMNS="200")  # a line per step
    shown = json.loads(_cli("runs", "show", run_id, "--json", env=env).stdout)
    ((owner,),) = _query(home, "SELECT owner FROM runs WHERE run_id = :r", r=run_id)
    goal_process = owner.rsplit(":", 1)[0]  # host:pid:token
    host = goal_process.split(":")[0]
    expected = {step["node"]: f"{host}:{workers[PLACEMENT[step['agent']]].pid}" if step["agent"] in PLACEMENT
                else goal_process for step in shown["steps"]}
    assert {s["node"]: s["worker"] for s in shown["steps"]} == expected
    assert set(expected.values()) >= {goal_process, f"{host}:{workers[0].pid}", f"{host}:{workers[1].pid}"}
    text = _cli("runs", "show", run_id, env=env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    for node, worker in expected.items():
        assert [line for line in lines if line.split()[:1] == [node] and f"on {worker}" in line], (node, worker,
                                                                                                   text.stdout)


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


class HeldAfterWrite:
    """The offline rules over HTTP, but the first model call made after the goal's write (`scale_service` ok) is
    held until ``release`` is set: the optimizer's worker is then inside that step, after its side effect."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: dict[str, Any]) -> Any:
        if not self.held.is_set() and _query(self.home, "SELECT 1 FROM tool_calls WHERE tool = 'scale_service' "
                                                        "AND status = 'ok'"):
            self.held.set()
            self.release.wait(timeout=600)
        return offline_responder(request)


def _served_env(home: Path, server: OpenAIServer, **extra: str) -> dict[str, str]:
    return dict(_env(home), AGENTMESH_MODEL="gpt-4o-mini", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=server.base_url,
                AGENTMESH_MODEL_TIMEOUT_S="600", **extra)


def test_a_step_lost_with_its_killed_worker_is_sent_again_and_acts_once(home):  # type: ignore[no-untyped-def]
    """kill -9 the optimizer's worker in the middle of its step (after its write, inside its next model call),
    start another: the goal finishes `done` on the new worker, every side effect once, long before max_seconds."""
    gate = HeldAfterWrite(home)
    with OpenAIServer(responder=gate) as server:
        env = _served_env(home, server, AGENTMESH_STEP_TIMEOUT_S="60")
        assert _cli("world", "init", env=env).returncode == 0
        started = [_start_worker(home, "analyst", ["analyst"], env),
                   _start_worker(home, "doomed", ["optimizer", "innovator"], env)]
        goal = subprocess.Popen([*AGENTMESH, "run", "--json", GOAL], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert gate.held.wait(timeout=240), (home / "doomed.log").read_text(errors="replace")[-3000:]
            ((run_id,),) = _query(home, "SELECT run_id FROM runs")
            doomed = f"{socket.gethostname()}:{started[1].pid}"
            (step,) = _query(home, "SELECT step_key, worker, status FROM steps WHERE run_id = :r AND "
                                   "agent = 'optimizer'", r=run_id)
            assert (step.worker, step.status) == (doomed, "running")
            assert [s.worker for s in _query(home, "SELECT worker FROM step_sends")] == [doomed]

            killed, killed_at = time.monotonic(), time.time()
            os.killpg(started[1].pid, signal.SIGKILL)
            started[1].wait(timeout=30)
            gate.release.set()
            started.append(_start_worker(home, "replacement", ["optimizer", "innovator"], env))
            replacement = f"{socket.gethostname()}:{started[2].pid}"
            up = time.monotonic()
            taken = None
            while goal.poll() is None:
                if taken is None and _query(home, "SELECT 1 FROM steps WHERE step_key = :k AND worker = :w",
                                            k=step.step_key, w=replacement):
                    taken = time.monotonic()
                assert time.monotonic() - killed < 600, "the goal is waiting out its wall time"
                time.sleep(0.1)
            stdout, stderr = goal.communicate(timeout=30)
            done = time.monotonic()
        finally:
            gate.release.set()
            stop(goal)
            for process in started:
                stop(process)

    assert goal.returncode == 0, stderr[-3000:]
    result = json.loads(stdout)
    assert result["status"] == "done" and result["decision"]["actions"], result
    # The goal saw the worker die, once, and sent the step again; the replacement ran it.
    lost = [e for e in _events(home, run_id) if e["type"] == "remote_step_lost"]
    assert [(e["agent"], e["worker"], e["step_key"]) for e in lost] == [("optimizer", doomed, step.step_key)]
    (final,) = _query(home, "SELECT worker, status FROM steps WHERE step_key = :k", k=step.step_key)
    assert tuple(final) == (replacement, "done")
    assert taken is not None
    # Every side effect once: one audit record per call id, one world effect per write, one scale of checkout-api.
    calls = _query(home, "SELECT tool_call_id, tool, status FROM tool_calls WHERE run_id = :r", r=run_id)
    assert len({c.tool_call_id for c in calls}) == len(calls)
    assert all(c.status != "running" for c in calls), calls
    assert [c.tool for c in calls if c.tool == "scale_service" and c.status == "ok"] == ["scale_service"]
    effects = [r.key for r in _query(home, "SELECT key FROM world_effects")]
    assert effects and len(effects) == len(set(effects))
    (replicas,) = _query(home, "SELECT replicas FROM world_services WHERE name = 'checkout-api'")[0]
    assert replicas == result["decision"]["actions"][0]["args"]["replicas"] != 4
    # In Prefect: the lost send's task run is marked Crashed (not left running), the second one Completed.
    ((flow_run_id,),) = _query(home, "SELECT flow_run_id FROM runs WHERE run_id = :r", r=run_id)
    optimizer_runs = [r["state_type"] for r in _prefect_step_runs(flow_run_id)
                      if r["task_key"] == "agentmesh-agent-step-optimizer"]
    assert sorted(optimizer_runs) == ["COMPLETED", "CRASHED"], optimizer_runs
    assert not _query(home, "SELECT 1 FROM step_sends"), "every send is forgotten once answered or given up"
    print(f"\nkill -9 of the optimizer's worker -> goal sent the step again: "
          f"{lost[0]['time'] - killed_at:.1f} s; replacement worker up "
          f"{up - killed:.1f} s after the kill; took the step {taken - killed:.1f} s; goal done "
          f"{done - killed:.1f} s after the kill (max_seconds 900)")
    assert done - killed < 300


def test_a_role_without_a_worker_fails_the_goal_within_the_step_timeout(home):  # type: ignore[no-untyped-def]
    """No worker serves the analyst: the goal fails in one line naming the role after step_timeout_s, not after
    max_seconds; a worker started later finds the send forgotten and does nothing with it."""
    env = dict(_env(home), AGENTMESH_REMOTE_ROLES='["analyst"]', AGENTMESH_STEP_TIMEOUT_S="5")
    assert _cli("world", "init", env=env).returncode == 0
    began = time.monotonic()
    failed = _cli("run", "--json", GOAL, env=env)
    took = time.monotonic() - began
    assert failed.returncode == 1, failed.stderr[-3000:]
    result = json.loads(failed.stdout)
    error = result["error"]
    assert result["status"] == "failed" and "\n" not in error, result
    assert error.startswith("no `agentmesh worker --role analyst` took the analyst's step within 5 s (task run "), error
    assert error.endswith("start one, raise step_timeout_s if the workers are busy, or drop 'analyst' from "
                          "remote_roles"), error
    run_id = result["run_id"]
    assert _query(home, "SELECT status, error FROM runs WHERE run_id = :r", r=run_id) == [("failed", error)]
    print(f"\nno analyst worker, step_timeout_s 5: the goal failed {took:.1f} s after it started (max_seconds 900)")
    assert took < 120
    ((flow_run_id,),) = _query(home, "SELECT flow_run_id FROM runs WHERE run_id = :r", r=run_id)
    assert [r["state_type"] for r in _prefect_step_runs(flow_run_id)] == ["CANCELLED"]

    # The send is still in Prefect's queue: a worker started now receives it, finds it no longer waited for,
    # and asks no model and writes nothing for the run.
    journal = _query(home, "SELECT count(*) FROM model_calls WHERE run_id = :r", r=run_id)
    late = _start_worker(home, "late", ["analyst"], env)
    try:
        deadline = time.monotonic() + 60
        while b"no longer waited for" not in (home / "late.log").read_bytes():
            assert time.monotonic() < deadline, (home / "late.log").read_text(errors="replace")[-3000:]
            time.sleep(0.2)
    finally:
        stop(late)
    assert _query(home, "SELECT count(*) FROM model_calls WHERE run_id = :r", r=run_id) == journal
    assert not _query(home, "SELECT 1 FROM steps WHERE run_id = :r AND agent = 'analyst' AND worker LIKE :w",
                      r=run_id, w=f"%:{late.pid}")
    assert _query(home, "SELECT status FROM runs")[0].status == "failed"


def _events(home: Path, run_id: str) -> list[dict[str, Any]]:
    rows = _query(home, "SELECT data, time FROM events WHERE run_id = :r ORDER BY seq", r=run_id)
    return [{**(r.data if isinstance(r.data, dict) else json.loads(r.data)), "time": r.time} for r in rows]
