"""Sends of a remote role's step (``agentmesh.persistence.owner``): what the goal reads to tell a slow worker from a
dead one, on a real database. The end-to-end story — a worker killed mid-step, a role without a worker — is in
tests/distributed/test_task_workers.py; here the cases a single machine cannot stage: a worker on another host whose
lease runs out, and a send taken twice or after it was forgotten."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from agentmesh.core.exceptions import RunFenced
from agentmesh.persistence.database import get_engine, utcnow
from agentmesh.persistence.owner import (
    drop_send,
    new_owner,
    renew_step,
    send_state,
    send_step,
    take_step,
    this_process,
)
from agentmesh.persistence.runs import create_run, list_steps, start_step
from agentmesh.persistence.tables import step_sends


@pytest.fixture
def engine(home: Path):  # type: ignore[no-untyped-def]
    engine = get_engine(f"sqlite:///{home / 'agentmesh.db'}")
    create_run(engine, run_id="r1", goal="g", graph="mesh", status="running", model="offline", offline=True,
               owner="goal-host:1:token", lease_until=utcnow() + timedelta(seconds=30))
    with engine.begin() as conn:
        start_step(conn, run_id="r1", step_key="analyst:1", node="analyst", agent="analyst", seq=1,
                   worker="goal-host:1")
    return engine


def _expire(engine, send_id: str) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(update(step_sends).where(step_sends.c.send_id == send_id)
                     .values(lease_until=utcnow() - timedelta(seconds=1)))


def test_a_worker_elsewhere_is_running_while_its_lease_is_renewed_and_lost_once_it_lapses(engine) -> None:  # type: ignore[no-untyped-def]
    send_id = send_step(engine, "r1", "analyst:1")
    assert send_state(engine, send_id) == ("waiting", None)
    elsewhere = "other-host:4711"  # a process on another machine: only its lease tells
    assert take_step(engine, send_id, elsewhere, 30, owner="goal-host:1:token")
    assert send_state(engine, send_id) == ("running", elsewhere)
    assert [s["worker"] for s in list_steps(engine, "r1")] == [elsewhere], "the step names the worker that took it"
    _expire(engine, send_id)
    assert send_state(engine, send_id) == ("lost", elsewhere)
    assert renew_step(engine, send_id, elsewhere, 30)  # a renewal (a slow worker) brings it back
    assert send_state(engine, send_id) == ("running", elsewhere)


def test_a_dead_process_on_this_host_is_lost_at_once(engine) -> None:  # type: ignore[no-untyped-def]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{this_process().split(':')[0]}:{int(gone.stdout)}"
    send_id = send_step(engine, "r1", "analyst:1")
    assert take_step(engine, send_id, dead, 30, owner=None)
    assert send_state(engine, send_id) == ("lost", dead), "its lease is current, but the process does not exist"
    alive = send_step(engine, "r1", "analyst:1")
    assert take_step(engine, alive, this_process(), 30, owner=None)
    assert send_state(engine, alive) == ("running", this_process())


def test_a_send_is_taken_once_and_not_after_it_is_forgotten(engine) -> None:  # type: ignore[no-untyped-def]
    send_id = send_step(engine, "r1", "analyst:1")
    assert take_step(engine, send_id, "host-a:1", 30, owner=None)
    assert not take_step(engine, send_id, "host-b:2", 30, owner=None), "taken already"
    assert not renew_step(engine, send_id, "host-b:2", 30), "only its worker renews it"
    drop_send(engine, send_id)
    assert not renew_step(engine, send_id, "host-a:1", 30), "forgotten: its worker's renewals stop"
    late = send_step(engine, "r1", "analyst:1")
    drop_send(engine, late)
    assert not take_step(engine, late, "host-c:3", 30, owner=None), "a forgotten send is not taken"
    assert [s["worker"] for s in list_steps(engine, "r1")] == ["host-a:1"]


def test_a_fenced_goal_s_send_is_not_taken(engine) -> None:  # type: ignore[no-untyped-def]
    send_id = send_step(engine, "r1", "analyst:1")
    with pytest.raises(RunFenced):
        take_step(engine, send_id, "host-a:1", 30, owner=new_owner())  # the run is another process's now
    assert send_state(engine, send_id) == ("waiting", None), "nothing written"
    assert [s["worker"] for s in list_steps(engine, "r1")] == ["goal-host:1"]
