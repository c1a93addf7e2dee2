"""Runs have one owner at a time (issue 20, part 1).

A real `agentmesh run` process is held inside a model call (the local OpenAI-protocol server does not answer it
until the test says so) after the run's first write. While it holds the run, `runs resume`, `approve` and the
HTTP API refuse it; `runs resume --force` takes it over and finishes it, and when the held process wakes, every
write it tries is rejected: the run's status, decision, steps, model journal and audit stay the new owner's.
A killed owner (`kill -9`) and a stopped one whose lease ran out are taken over without --force.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from durability_helpers import AGENTMESH, cli_env, loads, query, run_cli, stop, wait_for

from agentmesh.testing import OpenAIServer
from agentmesh.testing.offline_responder import offline_responder

GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"


class HeldAfterWrite:
    """Answers with the offline rules, but holds the first model call made after the run's first completed
    write until ``release`` is set (the process is then inside a model call, owning the run)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: dict[str, Any]) -> Any:
        if not self.held.is_set() and query(self.home, "SELECT 1 FROM tool_calls WHERE tool = 'scale_service' "
                                                       "AND status = 'ok'"):
            self.held.set()
            self.release.wait(timeout=600)
        return offline_responder(request)


@pytest.fixture
def held(home: Path) -> Iterator[tuple[HeldAfterWrite, OpenAIServer]]:
    gate = HeldAfterWrite(home)
    with OpenAIServer(responder=gate) as server:
        try:
            yield gate, server
        finally:
            gate.release.set()


@pytest.fixture
def model() -> Iterator[OpenAIServer]:
    """The model of the processes that take the run over: the offline rules, answered at once."""
    with OpenAIServer(responder=offline_responder) as server:
        yield server


def _start_held_run(home: Path, gate: HeldAfterWrite, server: OpenAIServer, **env: str) -> tuple[Any, str]:
    """`agentmesh run` until it is held in a model call after its first write; the process and the run id."""
    first = cli_env(home, server, AGENTMESH_MODEL_TIMEOUT_S="600", **env)
    assert run_cli("world", "init", env=first).returncode == 0
    process = subprocess.Popen([*AGENTMESH, "run", "--json", GOAL], env=first, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(gate.held.is_set, timeout=180, what="the run held in a model call after its first write")
    except BaseException:
        stop(process)
        raise
    ((run_id,),) = query(home, "SELECT run_id FROM runs")
    return process, run_id


def _record(home: Path, run_id: str) -> dict[str, Any]:
    """Everything a run's writers write: its record, steps, model journal, audit, events and the world's effects."""
    (run,) = query(home, "SELECT status, error, decision, plan, owner, lease_until FROM runs WHERE run_id = :r",
                   r=run_id)
    return {
        "run": tuple(run),
        "steps": query(home, "SELECT step_key, node, status, seq, started, ended FROM steps WHERE run_id = :r "
                             "ORDER BY seq", r=run_id),
        "journal": query(home, "SELECT step_key, seq, message FROM model_calls WHERE run_id = :r "
                               "ORDER BY step_key, seq", r=run_id),
        "audit": query(home, "SELECT tool_call_id, status, result, ended FROM tool_calls WHERE run_id = :r "
                             "ORDER BY tool_call_id", r=run_id),
        "events": query(home, "SELECT seq, type FROM events WHERE run_id = :r ORDER BY seq", r=run_id),
        "effects": query(home, "SELECT key FROM world_effects ORDER BY key"),
    }


def _fenced_exit(process: Any) -> str:
    """The held process, released after the takeover, stops with one line and exit 1; its stderr."""
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 1, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert "taken over by another process" in last and "Traceback" not in stderr, stderr[-3000:]
    return last


def test_a_live_run_is_refused_and_force_fences_its_owner(home, held, model) -> None:  # type: ignore[no-untyped-def]
    gate, slow = held
    process, run_id = _start_held_run(home, gate, slow)
    try:
        env = cli_env(home, model)
        (owner,) = query(home, "SELECT owner FROM runs")[0]
        assert owner.split(":")[1] == str(process.pid)  # host:pid:token of the process holding it
        before = _record(home, run_id)

        # Its owner is alive: resume and approve refuse it with one line naming --force, and change nothing.
        for args in (["runs", "resume", run_id, "--json"], ["approve", run_id]):
            refused = run_cli(*args, env=env)
            assert refused.returncode == 2, refused.stderr
            (line,) = refused.stderr.strip().splitlines()
            assert f"run {run_id} is being run by process {process.pid}" in line and "--force" in line
            assert refused.stdout == ""
        # The HTTP API too: 409 with the same message, nothing recorded.
        _http_refuses(home, run_id, process.pid)
        assert _record(home, run_id)["run"][0] == "running" and _record(home, run_id)["audit"] == before["audit"]

        # --force takes it over and finishes it here; the held process is fenced.
        taken = run_cli("runs", "resume", run_id, "--force", "--json", env=env)
        assert taken.returncode == 0, taken.stderr
        result = loads(taken.stdout)
        assert result["status"] == "done" and result["decision"]["actions"]
        after = _record(home, run_id)
        assert after["run"][0] == "done" and after["run"][4] != owner and after["run"][5] is None  # released
        scales = query(home, "SELECT 1 FROM tool_calls WHERE tool = 'scale_service' AND status = 'ok'")
        assert len(scales) == 1 and len(after["effects"]) == len(set(after["effects"]))  # no side effect twice

        # The old owner wakes up inside its model call: its reply, its step's end, its status are all rejected.
        gate.release.set()
        _fenced_exit(process)
        assert _record(home, run_id) == after  # status, decision, steps, journal, audit and events: the new owner's
        shown = loads(run_cli("runs", "show", run_id, "--json", env=env).stdout)
        assert shown["status"] == "done" and shown["decision"] == result["decision"]
    finally:
        gate.release.set()
        stop(process)


def _http_refuses(home: Path, run_id: str, pid: int) -> None:
    from fastapi.testclient import TestClient

    from agentmesh.core.settings import Settings
    from agentmesh.interfaces.http import create_app

    client = TestClient(create_app(Settings(home=home), identities=None), raise_server_exceptions=False)
    answer = client.post(f"/v1/goals/{run_id}/approvals", json={"approved": True})
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "run_owned"
    assert f"is being run by process {pid}" in answer.json()["error"]["message"]
    assert "--force" in answer.json()["error"]["message"]


def test_a_killed_owner_is_taken_over_without_force(home, held, model) -> None:  # type: ignore[no-untyped-def]
    gate, slow = held
    process, run_id = _start_held_run(home, gate, slow)
    try:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        (status, lease_until) = query(home, "SELECT status, lease_until FROM runs")[0]
        assert status == "running" and lease_until is not None  # its lease was current when it died
        resumed = run_cli("runs", "resume", run_id, "--json", env=cli_env(home, model))
        assert resumed.returncode == 0, resumed.stderr
        assert loads(resumed.stdout)["status"] == "done"
        scales = query(home, "SELECT 1 FROM tool_calls WHERE tool = 'scale_service' AND status = 'ok'")
        assert len(scales) == 1
    finally:
        gate.release.set()
        stop(process)


def test_a_stopped_owner_loses_its_run_when_its_lease_expires(home, held, model) -> None:  # type: ignore[no-untyped-def]
    """The owner is alive but stops renewing (a frozen process, a partitioned machine): once its lease has run
    out, resume proceeds without --force, and the owner, woken, finds itself fenced."""
    gate, slow = held
    process, run_id = _start_held_run(home, gate, slow, AGENTMESH_RUN_LEASE_S="2")
    try:
        # While it waits in the model call, its heartbeat renews the lease.
        (first,) = query(home, "SELECT lease_until FROM runs")[0]
        wait_for(lambda: query(home, "SELECT 1 FROM runs WHERE lease_until > :first", first=first), timeout=60,
                 what="the held owner to renew its lease")
        assert _alive(home, run_id)
        os.killpg(process.pid, signal.SIGSTOP)
        wait_for(lambda: not _alive(home, run_id), timeout=60, what="the stopped owner's lease to expire")
        resumed = run_cli("runs", "resume", run_id, "--json", env=cli_env(home, model))
        assert resumed.returncode == 0, resumed.stderr
        after = _record(home, run_id)
        assert after["run"][0] == "done"

        os.killpg(process.pid, signal.SIGCONT)
        gate.release.set()
        _fenced_exit(process)
        assert _record(home, run_id) == after
    finally:
        gate.release.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGCONT)
        stop(process)


def _alive(home: Path, run_id: str) -> bool:
    from agentmesh.persistence.database import get_engine
    from agentmesh.persistence.owner import owner_alive
    from agentmesh.persistence.runs import get_run

    return owner_alive(get_run(get_engine(f"sqlite:///{home / 'agentmesh.db'}"), run_id))


# -- the check in the write's own transaction, on SQLite and PostgreSQL ------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_fenced_owner_writes_nothing(backend, home, request) -> None:  # type: ignore[no-untyped-def]
    from agentmesh.core.exceptions import RunFenced, RunOwned
    from agentmesh.persistence import audit
    from agentmesh.persistence.database import get_engine
    from agentmesh.persistence.owner import claim_run, lease_end, new_owner, owner_alive, renew_lease
    from agentmesh.persistence.runs import create_run, end_step, find_run, list_steps, start_step, update_run

    url = (request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg://", 1)
           if backend == "postgresql" else f"sqlite:///{home / 'agentmesh.db'}")
    engine = get_engine(url)
    old, new = new_owner(), new_owner()
    create_run(engine, run_id="r1", goal="g", graph="mesh", status="running", model="offline", offline=True,
               owner=old, lease_until=lease_end(30))
    assert owner_alive(find_run(engine, "r1"))  # type: ignore[arg-type]
    with pytest.raises(RunOwned, match="--force"):
        claim_run(engine, "r1", new, 30)
    with engine.begin() as conn:
        start_step(conn, run_id="r1", step_key="act", node="act", seq=1, if_owner=old)
    audit.begin_call(engine, run_id="r1", tool_call_id="c1", tool="scale_service", status="running", if_owner=old)

    claim_run(engine, "r1", new, 30, force=True)  # the takeover fences the old owner
    for write in (
        lambda: update_run(engine, "r1", status="failed", decision={"summary": "old"}, if_owner=old),
        lambda: audit.finish_call(engine, "r1", "c1", status="failed", if_owner=old),
        lambda: audit.begin_call(engine, run_id="r1", tool_call_id="c2", tool="t", status="running", if_owner=old),
        lambda: audit.record_approval(engine, "r1", "c1", approved=True, approver="x", if_owner=old),
    ):
        with pytest.raises(RunFenced, match="taken over"):
            write()
    with pytest.raises(RunFenced), engine.begin() as conn:
        end_step(conn, run_id="r1", step_key="act", status="done", if_owner=old)
    assert not renew_lease(engine, "r1", old, 30)

    # Nothing of the old owner's landed; the new owner writes.
    assert [s["status"] for s in list_steps(engine, "r1")] == ["running"]
    assert [(c.tool_call_id, c.status) for c in audit.list_calls(engine, "r1")] == [("c1", "running")]
    audit.finish_call(engine, "r1", "c1", status="ok", if_owner=new)
    update_run(engine, "r1", status="done", decision={"summary": "new"}, lease_until=None, if_owner=new)
    record = find_run(engine, "r1")
    assert record is not None and (record["status"], record["decision"], record["owner"]) == ("done", {"summary": "new"}, new)
    assert not owner_alive(record) and not renew_lease(engine, "r1", new, 30)  # released: nothing to renew


def test_an_owner_whose_process_is_gone_is_not_alive(home) -> None:  # type: ignore[no-untyped-def]
    import socket

    from agentmesh.persistence.owner import lease_end, owner_alive

    gone = subprocess.Popen(["true"])
    gone.wait()
    here = socket.gethostname()
    assert owner_alive({"owner": f"{here}:{os.getpid()}:t", "lease_until": lease_end(30)})
    assert not owner_alive({"owner": f"{here}:{gone.pid}:t", "lease_until": lease_end(30)})
    assert owner_alive({"owner": f"elsewhere:{gone.pid}:t", "lease_until": lease_end(30)})  # only its lease tells
    assert not owner_alive({"owner": f"elsewhere:{gone.pid}:t", "lease_until": lease_end(-1)})
