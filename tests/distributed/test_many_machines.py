"""The README's "Running on many machines", executed: processes stand in for machines, each with its own working
folder, agentmesh home and PREFECT_HOME, sharing only what the README says machines share.

PostgreSQL holds the Prefect server's database and agentmesh's; `prefect server start` runs on it; a process work
pool `agents` gets the deployment of `prefect.yaml` (`prefect deploy --all`) and one made by `agentmesh deploy`;
`agentmesh prefect automations` sets up dead-worker recovery; two `prefect worker start` processes ("machine A"
and "machine B") run goals, and an `agentmesh worker --role analyst` task worker ("machine C") runs the analyst's
steps. A goal submitted with `prefect deployment run` is held in a model call after its first side effect, and the
worker running it is killed with its flow run (the machine dies). The goal must finish by itself on the other
worker — detected by the heartbeat automation, put back on the pool, resumed from its checkpoint — with every side
effect once and its audit complete; `runs show` names the host and process of each step.
"""

from __future__ import annotations

import json
import os
import shutil
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
import sqlalchemy as sa
from distributed_helpers import stop

from agentmesh.testing import OpenAIServer
from agentmesh.testing.offline_responder import offline_responder

BIN = Path(sys.executable).parent
AGENTMESH = [sys.executable, "-m", "agentmesh"]
REPO = Path(__file__).resolve().parents[2]
GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"
SECOND_GOAL = "How is payments-api doing?"
DEAD_AFTER_S = 60  # the automation's window: two heartbeats (Prefect's minimum interval is 30 s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(condition: Any, *, timeout: float, what: str, logs: list[Path] = ()) -> Any:  # type: ignore[assignment]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


class HeldAfterScale:
    """The offline rules over HTTP, holding the first model call made after a scale_service call succeeded (the
    goal has acted, and is mid-way) until ``release`` is set."""

    def __init__(self, database_url: str) -> None:
        self.engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: dict[str, Any]) -> Any:
        if not self.held.is_set() and _rows(self.engine, "SELECT 1 FROM tool_calls WHERE tool = 'scale_service' "
                                                         "AND status = 'ok'"):
            self.held.set()
            self.release.wait(timeout=600)
        return offline_responder(request)


def _rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # tables not created yet
        return []


@pytest.fixture
def cluster(tmp_path: Path, postgres_server: str) -> Iterator[dict[str, Any]]:
    """PostgreSQL databases for Prefect and agentmesh, and `prefect server start` on the first."""
    import psycopg

    suffix = f"{os.getpid()}_{_free_port()}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        for name in (f"prefect_{suffix}", f"agentmesh_{suffix}"):
            conn.execute(f'CREATE DATABASE "{name}"')
    server_home = tmp_path / "prefect-server"
    server_home.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AGENTMESH_"))}
    server_env = dict(env, PREFECT_HOME=str(server_home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                      PREFECT_UI_ENABLED="false",
                      PREFECT_API_DATABASE_CONNECTION_URL=postgres_server.replace(
                          "postgresql://", "postgresql+asyncpg://", 1) + f"/prefect_{suffix}")
    log = server_home / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                                   str(port)], env=server_env, stdout=out, stderr=out, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"{api}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait(healthy, timeout=180, what="prefect server start on PostgreSQL", logs=[log])
        yield {"env": env, "api": api, "agentmesh_db": f"{postgres_server}/agentmesh_{suffix}", "log": log}
    finally:
        stop(server)


def _machine(tmp_path: Path, name: str, common: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A machine: its own working folder, agentmesh home and PREFECT_HOME, and the variables every machine sets."""
    folder = tmp_path / name
    (folder / "prefect").mkdir(parents=True)
    return folder, {**common, "AGENTMESH_HOME": str(folder / "home"), "PREFECT_HOME": str(folder / "prefect")}


def _run(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def _start(args: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=out, start_new_session=True)


def _states(api: str, flow_run_id: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": flow_run_id}, timeout=10).json()
    return sorted(found, key=lambda s: s["timestamp"])


def test_a_goal_whose_worker_dies_finishes_on_another_worker(tmp_path: Path, cluster: dict[str, Any]) -> None:
    gate = HeldAfterScale(cluster["agentmesh_db"])
    with OpenAIServer(responder=gate) as model:
        try:
            states = _scenario(tmp_path, cluster, gate, model)
        finally:
            gate.release.set()
            gate.engine.dispose()
    # Prefect's record of the goal: it ran, its worker died, it went back on the pool and completed elsewhere.
    after = states[states.index("Crashed"):]
    assert after[:2] == ["Crashed", "AwaitingRetry"] and after[-2:] == ["Running", "Completed"], states


def _scenario(tmp_path: Path, cluster: dict[str, Any], gate: HeldAfterScale, model: OpenAIServer) -> list[str]:
    api = cluster["api"]
    shared = tmp_path / "shared"  # a folder every machine mounts: dataset versions and remote steps' results
    common = {
        **cluster["env"], "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "AGENTMESH_DATABASE_URL": cluster["agentmesh_db"], "AGENTMESH_STORAGE_URL": str(shared / "agentmesh"),
        "AGENTMESH_REMOTE_ROLES": '["analyst"]', "AGENTMESH_DEAD_WORKER_S": str(DEAD_AFTER_S),
        "AGENTMESH_MODEL": "gpt-4o-mini", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.base_url,
        "AGENTMESH_MODEL_TIMEOUT_S": "600",
        "PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK": "local-file-system/agentmesh-steps",
        "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": "local-file-system/agentmesh-steps",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    admin_dir, admin = _machine(tmp_path, "admin", common)
    # Step 4's shared result storage, created as the README shows.
    _run([sys.executable, "-c", "from prefect.filesystems import LocalFileSystem; "
          f"LocalFileSystem(basepath={str(shared / 'steps')!r}).save('agentmesh-steps')"], env=admin, cwd=admin_dir)
    # Step 3: the pool, the deployment of prefect.yaml (from a copy of the checkout's file), dead-worker recovery.
    shutil.copy(REPO / "prefect.yaml", admin_dir / "prefect.yaml")
    _run([str(BIN / "prefect"), "work-pool", "create", "agents", "--type", "process"], env=admin, cwd=admin_dir)
    _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env=admin, cwd=admin_dir)
    _run([*AGENTMESH, "prefect", "automations"], env=admin, cwd=admin_dir)
    _run([*AGENTMESH, "world", "init"], env=admin, cwd=admin_dir)
    made = _run([*AGENTMESH, "deploy", "payments-check", "--goal", SECOND_GOAL, "--work-pool", "agents"],
                env=admin, cwd=admin_dir)
    assert "payments-check" in made.stdout

    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    try:
        for name in ("machine-a", "machine-b"):
            folder, env = _machine(tmp_path, name, common)
            logs[name] = folder / "worker.log"
            processes[name] = _start([str(BIN / "prefect"), "worker", "start", "--pool", "agents", "--name", name],
                                     env=env, cwd=folder, log=logs[name])
        folder, env = _machine(tmp_path, "machine-c", common)
        logs["machine-c"] = folder / "worker.log"
        processes["machine-c"] = _start([*AGENTMESH, "worker", "--role", "analyst"], env=env, cwd=folder,
                                        log=logs["machine-c"])
        all_logs = [*logs.values(), cluster["log"]]

        started = _run([str(BIN / "prefect"), "deployment", "run", "agentmesh-goal/goal", "--param",
                        f"goal={GOAL}"], env=admin, cwd=admin_dir)
        flow_run_id = next(line.split()[-1] for line in started.stdout.splitlines() if "UUID" in line)
        _wait(gate.held.is_set, timeout=300, what="the goal held mid-way, after its scale_service", logs=all_logs)

        # The machine running the goal dies: its worker and the goal's flow run process, at once.
        engine = gate.engine
        ((owner,),) = _rows(engine, "SELECT owner FROM runs WHERE run_id = :r", r=flow_run_id)
        flow_pid = int(owner.split(":")[1])
        doomed = next(n for n in ("machine-a", "machine-b") if processes[n].pid in _ancestors(flow_pid))
        survivor = "machine-b" if doomed == "machine-a" else "machine-a"
        os.killpg(processes[doomed].pid, signal.SIGKILL)
        os.kill(flow_pid, signal.SIGKILL)  # the runner starts a flow run in a session of its own
        killed_at = time.time()
        processes[doomed].wait(timeout=30)
        gate.release.set()

        second = _run([*AGENTMESH, "deploy", "run", "payments-check"], env=admin, cwd=admin_dir)
        assert "started flow run" in second.stdout

        def crashed_at() -> float | None:
            for state in _states(api, flow_run_id):
                if state["type"] == "CRASHED":
                    return _epoch(state["timestamp"])
            return None

        detected = _wait(crashed_at, timeout=DEAD_AFTER_S + 120, what="the dead worker's goal marked Crashed",
                         logs=all_logs)

        def finished() -> bool:
            rows = _rows(engine, "SELECT status FROM runs")
            return len(rows) == 2 and all(r.status in ("done", "failed") for r in rows)

        _wait(finished, timeout=300, what="both goals finished", logs=all_logs)
        # agentmesh records the run before the flow run's engine reports its final state to Prefect.
        final = _wait(lambda: (last := _states(api, flow_run_id)[-1])["type"] in ("COMPLETED", "FAILED", "CRASHED",
                                                                                   "CANCELLED") and last,
                      timeout=60, what="the flow run's final state in Prefect", logs=all_logs)
        completed = _epoch(final["timestamp"])
    finally:
        for process in processes.values():
            stop(process)

    print(f"\nkill -9 of {doomed} → Crashed in {detected - killed_at:.1f} s (dead_worker_s {DEAD_AFTER_S}, "
          f"heartbeat 30 s) → goal done on {survivor} {completed - killed_at:.1f} s after the kill")
    states = [s["name"] for s in _states(api, flow_run_id)]
    assert states[-1] == "Completed", states
    assert "Crashed" in states and "AwaitingRetry" in states, states
    assert f"flow run '{flow_run_id}'" in logs[survivor].read_text() or flow_run_id in logs[survivor].read_text()

    admin_env = admin
    shown = json.loads(_run([*AGENTMESH, "runs", "show", flow_run_id, "--json"], env=admin_env, cwd=admin_dir).stdout)
    assert shown["status"] == "done" and shown["decision"]["actions"], shown
    # Where each step ran: the dead machine's flow process before the kill, the survivor's after; the analyst's
    # steps on machine C's task worker.
    analyst = f"{socket.gethostname()}:{processes['machine-c'].pid}"
    local = [s["worker"] for s in shown["steps"] if s["agent"] != "analyst"]
    assert all(s["worker"] for s in shown["steps"]), shown["steps"]
    assert any(w.endswith(f":{flow_pid}") for w in local) and any(not w.endswith(f":{flow_pid}") for w in local)
    assert {s["worker"] for s in shown["steps"] if s["agent"] == "analyst"} == {analyst}, shown["steps"]
    table = _run([*AGENTMESH, "runs", "show", flow_run_id], env={**admin_env, "COLUMNS": "200"}, cwd=admin_dir).stdout
    assert f"on {analyst}" in table and f":{flow_pid}" in table
    # Every side effect once: one audit record per tool call id, one world effect per write, one scale.
    audit = _rows(engine, "SELECT tool_call_id, tool, status, agent FROM tool_calls WHERE run_id = :r", r=flow_run_id)
    assert len({r.tool_call_id for r in audit}) == len(audit)
    assert [r.status for r in audit if r.tool == "scale_service"] == ["ok"], audit
    effects = [r.key for r in _rows(engine, "SELECT key FROM world_effects")]
    assert len(effects) == len(set(effects))
    (replicas,) = _rows(engine, "SELECT replicas FROM world_services WHERE name = 'checkout-api'")[0]
    assert replicas == next(a for a in shown["decision"]["actions"] if a["tool"] == "scale_service")["args"]["replicas"]
    # The audit is complete: every action the decision names is an audited, executed call.
    assert {a["tool"] for a in shown["decision"]["actions"]} <= {r.tool for r in audit if r.status == "ok"}
    # The second goal, from `agentmesh deploy`, ran on the survivor too.
    (other,) = _rows(engine, "SELECT status, deployment FROM runs WHERE run_id != :r", r=flow_run_id)
    assert tuple(other) == ("done", "payments-check")
    return states


def _ancestors(pid: int) -> list[int]:
    found = []
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        found.append(pid)
    return found


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
