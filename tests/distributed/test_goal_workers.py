"""Whole goals in worker processes (agentmesh.runtime.goal_workers): `run_goals(processes=N)` and `agentmesh serve
--processes N` send goals to `agentmesh worker --goals` processes — Prefect task workers — that run them with the
ordinary runtime, in the shared agentmesh database, on the session's local Prefect server.
"""

from __future__ import annotations

import json
import os
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

from agentmesh.testing import OpenAIServer
from agentmesh.testing.offline_responder import offline_responder

AGENTMESH = [sys.executable, "-m", "agentmesh"]
GOALS = [
    "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost",
    "the orders table has duplicate and malformed rows; clean them up",
    "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost",
    "the orders table has duplicate and malformed rows; clean them up",
]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENTMESH, *args], env=env, capture_output=True, text=True, timeout=240)


def test_a_batch_runs_in_two_worker_processes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four goals, two worker processes of one goal at a time each: every run done with a decision and an audit,
    each run's steps recorded by one worker process, and both processes used; this process ran no step."""
    from agentmesh import Settings, run_goals

    monkeypatch.setenv("AGENTMESH_MODEL", "offline")
    assert _cli("world", "init", env=dict(os.environ)).returncode == 0
    settings = Settings()
    runs = run_goals(GOALS, processes=2, limit=1, settings=settings)
    assert [r["goal"] for r in runs] == GOALS
    assert all(r["status"] == "done" and r["decision"] for r in runs), [(r["status"], r["error"]) for r in runs]
    pids_by_run = {}
    for run in runs:
        workers = {s.worker for s in _query(home, "SELECT worker FROM steps WHERE run_id = :r", r=run["run_id"])}
        assert len(workers) == 1, workers  # the whole goal ran in one process
        pids_by_run[run["run_id"]] = int(workers.pop().rsplit(":", 1)[1])
        calls = _query(home, "SELECT status FROM tool_calls WHERE run_id = :r", r=run["run_id"])
        assert calls and all(c.status == "ok" for c in calls), calls
    assert os.getpid() not in pids_by_run.values()
    assert len(set(pids_by_run.values())) == 2, pids_by_run
    # The first goal of each kind acted (the world is shared: the second of a kind may find nothing left to do).
    assert any(a["tool"] == "scale_service" for r in runs[::2] for a in r["decision"]["actions"]), runs


def test_a_batch_of_nothing_runs_nothing_and_bad_input_is_one_line(home: Path) -> None:
    from agentmesh import run_goals
    from agentmesh.core.exceptions import UserError

    assert run_goals([], processes=2) == []
    with pytest.raises(UserError, match="the goal is empty"):
        run_goals(["fine", " "], processes=2)
    with pytest.raises(UserError, match="processes must be 0 or more"):
        run_goals(["fine"], processes=-1)
    with pytest.raises(UserError, match="approvals must be wait, auto or deny"):
        run_goals(["fine"], processes=2, approvals="maybe")


class Held:
    """The offline rules over HTTP, holding the first model call until ``release`` is set."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: dict[str, Any]) -> Any:
        if not self.held.is_set():
            self.held.set()
            self.release.wait(timeout=300)
        return offline_responder(request)


@pytest.fixture
def served(home: Path) -> Iterator[tuple[str, Held, Path]]:
    """`agentmesh serve --processes 1` on a model server that holds its first call."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    gate = Held()
    with OpenAIServer(responder=gate) as model:
        env = dict(os.environ, AGENTMESH_MODEL="gpt-4o-mini", OPENAI_API_KEY="sk-test",
                   OPENAI_BASE_URL=model.base_url, AGENTMESH_MODEL_TIMEOUT_S="600")
        assert _cli("world", "init", env=env).returncode == 0
        log_path = home / "serve.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen([*AGENTMESH, "serve", "--port", str(free_port), "--processes", "1"], env=env,
                                       stdout=log, stderr=log, start_new_session=True)
        url = f"http://127.0.0.1:{free_port}"
        try:
            deadline = time.monotonic() + 120
            while b"serving goals" not in log_path.read_bytes():  # the server, then its worker process
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.2)
            yield url, gate, log_path
        finally:
            gate.release.set()
            stop(process)


def test_serve_runs_goals_in_its_worker_process_and_cancels_them_there(served: tuple[str, Held, Path],
                                                                        home: Path) -> None:
    """A goal posted to `agentmesh serve --processes 1` runs in the worker process (its steps say so), its events
    reach the server's stream; a held goal is cancelled from the API — recorded cancelled, its flow run Cancelled in
    Prefect — and the worker goes on to run the next goal to its decision."""
    url, gate, log_path = served
    with httpx.Client(base_url=url, timeout=60) as client:
        first = client.post("/v1/goals", json={"goal": GOALS[0]}).json()["id"]
        assert gate.held.wait(timeout=180), log_path.read_text()[-3000:]
        cancelled = client.post(f"/v1/goals/{first}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        gate.release.set()
        second = client.post("/v1/goals", json={"goal": GOALS[1]}).json()["id"]
        events = []
        with client.stream("GET", f"/v1/goals/{second}/events", timeout=180) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if events[-1].get("type") == "run_finished":
                        break
        done = client.get(f"/v1/goals/{second}").json()
    assert events[0]["type"] == "run_started" and events[-1]["status"] == "done", events[-3:]
    assert done["status"] == "done" and done["decision"], done
    workers = {s.worker for s in _query(home, "SELECT worker FROM steps WHERE run_id IN (:a, :b)", a=first, b=second)}
    assert len(workers) == 1, workers  # both goals ran in the one worker process
    record = _query(home, "SELECT status, flow_run_id FROM runs WHERE run_id = :r", r=first)[0]
    assert record.status == "cancelled"
    assert _flow_run_state(record.flow_run_id) == "CANCELLED"
    assert "goal " + first[:8] in log_path.read_text()  # the worker's line for it


def _flow_run_state(flow_run_id: str) -> str:
    import asyncio

    from prefect.client.orchestration import get_client

    async def read() -> str:
        async with get_client() as client:
            flow_run = await client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
            return str(flow_run.state.type.value) if flow_run.state else ""

    from agentmesh.core.settings import Settings
    from agentmesh.runtime.prefect import configure_prefect

    configure_prefect(Settings())
    return asyncio.run(read())
