"""Scheduled goals on a real `prefect server start`: an interval deployment served by `agentmesh deploy --serve`,
and a process work pool whose worker runs `agentmesh deploy run`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from durability_helpers import AGENTMESH, loads, query, run_cli, stop, wait_for

PREFECT = str(Path(sys.executable).parent / "prefect")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real `prefect server start` on 127.0.0.1 with a temporary PREFECT_HOME."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115  (the server's, for its life)
    process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError("prefect server exited: " + (home / "server.log").read_text()[-2000:])
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=120, what="prefect server start")
    try:
        yield {**env, "PREFECT_API_URL": url, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def test_interval_deployment_served_runs_goals_recorded_in_agentmesh(home, prefect_server):  # type: ignore[no-untyped-def]
    env = {**prefect_server, "AGENTMESH_HOME": str(home)}
    assert run_cli("world", "init", env=env).returncode == 0
    made = run_cli("deploy", "health-check", "--goal", "How is payments-api doing?", "--interval", "10", "--json", env=env)
    assert made.returncode == 0, made.stderr
    listed = loads(run_cli("deploy", "list", "--json", env=env).stdout)
    assert [(d["name"], d["interval"]) for d in listed] == [("health-check", 10.0)]

    log = open(home / "serve.log", "wb")  # noqa: SIM115
    serving = subprocess.Popen([*AGENTMESH, "deploy", "--serve", "health-check", "--limit", "1"], env=env,
                               stdout=log, stderr=log, start_new_session=True)
    try:
        def two_done():  # type: ignore[no-untyped-def]
            rows = query(home, "SELECT run_id, goal FROM runs WHERE deployment = 'health-check' AND status = 'done'")
            return rows if len(rows) >= 2 else None

        try:
            done = wait_for(two_done, timeout=180, what="two completed scheduled runs", log=home / "serve.log")
        except AssertionError as exc:
            runs = subprocess.run([PREFECT, "flow-run", "ls"], env=env, capture_output=True, text=True).stdout
            raise AssertionError(f"{exc}\n{runs}") from None
    finally:
        stop(serving)
    assert all(r.goal == "How is payments-api doing?" for r in done)
    for run in done:  # their audits are in the agentmesh database too
        calls = query(home, "SELECT tool, status FROM tool_calls WHERE run_id = :r", r=run.run_id)
        assert any(c.tool == "get_service_metrics" and c.status == "ok" for c in calls)
    shown = loads(run_cli("runs", "list", "--json", env=env).stdout)
    assert {r["deployment"] for r in shown if r["run_id"] in {d.run_id for d in done}} == {"health-check"}

    paused = run_cli("deploy", "pause", "health-check", env=env)
    assert paused.returncode == 0, paused.stderr
    assert loads(run_cli("deploy", "list", "--json", env=env).stdout)[0]["paused"] is True


def test_process_work_pool_worker_runs_deploy_run(home, prefect_server):  # type: ignore[no-untyped-def]
    env = {**prefect_server, "AGENTMESH_HOME": str(home)}
    assert run_cli("world", "init", env=env).returncode == 0
    pool = subprocess.run([PREFECT, "work-pool", "create", "agents", "--type", "process"], env=env,
                          capture_output=True, text=True)
    assert pool.returncode == 0, pool.stderr
    made = run_cli("deploy", "nightly", "--goal", "recommendations looks over-provisioned; cut its cost",
                   "--interval", "86400", "--work-pool", "agents", env=env)
    assert made.returncode == 0, made.stderr
    started = run_cli("deploy", "run", "nightly", env=env)
    assert started.returncode == 0, started.stderr
    log = open(home / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "agents", "--run-once"], env=env,
                              stdout=log, stderr=log, start_new_session=True)
    try:
        (run,) = wait_for(lambda: query(home, "SELECT run_id, status FROM runs WHERE deployment = 'nightly' "
                                              "AND status = 'done'"), timeout=180, what="the worker's run",
                          log=home / "worker.log")
    finally:
        stop(worker)
    calls = query(home, "SELECT tool, status FROM tool_calls WHERE run_id = :r", r=run.run_id)
    assert any(c.tool == "scale_service" and c.status == "ok" for c in calls)


def test_deployments_carry_no_secret_and_run_with_the_workers_interpreter(home, prefect_server):  # type: ignore[no-untyped-def]
    """`prefect deploy --all` (the repository's prefect.yaml) and `agentmesh deploy NAME --goal ... --work-pool agents`
    (no schedule: run on demand), made where a database password and an API key are set, store neither; a worker
    whose PATH has no `python` (its venv not activated) runs both, with the database URL from its own environment."""
    password, key = "pw-never-in-prefect", "sk-never-in-prefect"
    secrets = {**prefect_server, "AGENTMESH_HOME": str(home), "OPENAI_API_KEY": key,
               "AGENTMESH_DATABASE_URL": f"postgresql://agentmesh:{password}@db.invalid:5432/agentmesh"}
    pool = subprocess.run([PREFECT, "work-pool", "create", "agents", "--type", "process", "--overwrite"],
                          env=prefect_server, capture_output=True, text=True)
    assert pool.returncode == 0, pool.stderr
    made = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], cwd=Path(__file__).parents[2], env=secrets,
                          capture_output=True, text=True, timeout=180)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    on_demand = run_cli("deploy", "on-demand", "--goal", "How is payments-api doing?", "--work-pool", "agents",
                        env=secrets)
    assert on_demand.returncode == 0, on_demand.stderr
    assert "agentmesh deploy run on-demand" in on_demand.stdout

    found = httpx.post(f"{prefect_server['PREFECT_API_URL']}/deployments/filter", json={}, timeout=10)
    stored = {d["name"]: d for d in found.json() if d["name"] in ("goal", "on-demand")}
    assert set(stored) == {"goal", "on-demand"}
    assert password not in found.text and key not in found.text
    for deployment in stored.values():
        # The one job variable: the heartbeat dead-worker recovery needs (agentmesh.deployments), not a secret.
        assert deployment["job_variables"] == {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}
        assert deployment["schedules"] == [] and deployment["work_pool_name"] == "agents"
    assert stored["goal"]["pull_steps"] == [{"agentmesh.deployments.check_install": {}}]
    assert not stored["on-demand"]["pull_steps"]

    started = subprocess.run([PREFECT, "deployment", "run", "agentmesh-goal/goal", "--param",
                              "goal=How is checkout-api doing?"], env=prefect_server, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    assert run_cli("deploy", "run", "on-demand", env=prefect_server | {"AGENTMESH_HOME": str(home)}).returncode == 0
    worker_env = {k: v for k, v in prefect_server.items() if k not in ("VIRTUAL_ENV", "OPENAI_API_KEY")}
    worker_env.update(PATH="/usr/bin:/bin", AGENTMESH_HOME=str(home),
                      AGENTMESH_DATABASE_URL=f"sqlite:///{home / 'agentmesh.db'}")
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "agents"], env=worker_env,
                              stdout=log, stderr=log, start_new_session=True)
    try:
        done = wait_for(lambda: (rows := query(home, "SELECT run_id, deployment FROM runs WHERE status = 'done' "
                                                     "AND deployment IN ('goal', 'on-demand')")) and len(rows) == 2
                        and rows, timeout=240, what="both deployments' runs", log=home / "worker.log")
    finally:
        stop(worker)
    assert {r.deployment for r in done} == {"goal", "on-demand"}


def test_embedded_prefect_refuses_to_schedule(home):  # type: ignore[no-untyped-def]
    env = dict(os.environ, AGENTMESH_HOME=str(home), AGENTMESH_PREFECT="embedded")
    env.pop("PREFECT_API_URL", None)
    made = run_cli("deploy", "x", "--goal", "anything", "--interval", "5", env=env)
    assert made.returncode == 2
    assert "never runs schedules" in made.stderr and "Traceback" not in made.stderr
