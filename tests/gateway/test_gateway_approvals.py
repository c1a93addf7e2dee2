"""Approvals through the gateway: a policy that makes `scale_service` wait for a person pauses the run (an
``interrupt()``), nothing changes until the verdict, and the resumed run acts exactly once — or never."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from gateway_harness import MeshScript, write_policy

import agentmesh
from agentmesh.core.exceptions import UserError
from agentmesh.core.settings import Settings
from agentmesh.persistence import audit
from agentmesh.plugins.operations.world import World
from agentmesh.runtime.approvals import aapprove
from agentmesh.runtime.components import components

SCALE = ("scale_service", {"service": "checkout-api", "replicas": 6})


@pytest.fixture
def approval_policy(home: Path) -> Path:
    return write_policy(home, lambda text: text.replace("approval_required = []",
                                                        'approval_required = ["scale_service"]'))


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> MeshScript:
    """The optimizer scales checkout-api to 6 then reads its metrics; the script is the model of every run,
    resumed ones included (aapprove resumes with the configured model, so the factory is patched)."""
    script = MeshScript(steps={"optimizer": [SCALE, ("get_service_metrics", {"service": "checkout-api"})]})
    model = script.model()
    monkeypatch.setattr("agentmesh.models.make_chat_model", lambda settings, model_name=None, **kw: model)
    return script


def checkout_replicas(settings: Settings) -> int:
    world = components(settings).resources.get(World)
    return next(s["replicas"] for s in world.snapshot()["services"] if s["name"] == "checkout-api")


def scale_records(settings: Settings, run_id: str) -> list[audit.ToolCallRecord]:
    return [r for r in audit.list_calls(components(settings).engine, run_id) if r.tool == "scale_service"]


def effects_of(settings: Settings, run_id: str) -> int:
    """How many times a scale was applied under this run's keys (the world's own idempotency table)."""
    from sqlalchemy import func, select

    from agentmesh.plugins.operations.world._tables import effects

    with components(settings).engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(effects).where(
            effects.c.key.like(f"{run_id}:%"), effects.c.method == "scale_service")).scalar_one()


async def task_run_states(flow_run_id: str) -> dict[str, list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])))
    states: dict[str, list[str]] = {}
    for tr in runs:
        states.setdefault(tr.name.rsplit("-", 1)[0], []).append(tr.state.type.value if tr.state else "NONE")
    return states


async def start_paused(settings: Settings, script: MeshScript) -> dict[str, Any]:
    before = checkout_replicas(settings) if components(settings).resources.get(World).sample_name() else 4
    paused = await agentmesh.arun_goal("Scale checkout-api to 6 replicas", settings=settings, approvals="wait")
    assert paused["status"] == "waiting_approval", paused["error"]
    assert checkout_replicas(settings) == before == 4
    (pending,) = paused["pending_approvals"]
    assert (pending["tool"], pending["args"], pending["status"]) == ("scale_service", SCALE[1], "pending_approval")
    (record,) = scale_records(settings, paused["run_id"])
    assert (record.status, record.approval, record.ended) == ("pending_approval", "pending", None)
    assert script.decisions == 0
    return paused


async def test_wait_then_approve_scales_exactly_once(home: Path, approval_policy: Path, script: MeshScript) -> None:
    settings = Settings(model="offline", node_retries=0)
    paused = await start_paused(settings, script)

    # The paused node is a pause, not a crash: none of the first flow run's task runs failed.
    states = await task_run_states(paused["flow_run_id"])
    assert "optimizer" in states, states
    assert all(s not in ("FAILED", "CRASHED") for ss in states.values() for s in ss), states

    done = await aapprove(paused["run_id"], approved=True, approver="alice", settings=settings)

    assert done["status"] == "done", done["error"]
    assert done["decision"]["summary"] == "scripted decision"
    assert checkout_replicas(settings) == 6
    (record,) = scale_records(settings, paused["run_id"])
    assert (record.status, record.approval, record.approver) == ("ok", "approved", "alice")
    assert record.result["replicas"] == 6 and "replayed" not in record.result
    assert effects_of(settings, paused["run_id"]) == 1
    assert [r["status"] for r in script.seen["optimizer"]] == ["ok", "ok"]
    assert [a["args"] for a in done["decision"]["actions"]] == [SCALE[1]]
    assert done["pending_approvals"] == []


async def test_wait_then_reject_changes_nothing(home: Path, approval_policy: Path, script: MeshScript) -> None:
    settings = Settings(model="offline", node_retries=0)
    paused = await start_paused(settings, script)

    done = await aapprove(paused["run_id"], approved=False, approver="bob", reason="not during the sale",
                          settings=settings)

    assert done["status"] == "done", done["error"]
    assert checkout_replicas(settings) == 4
    (record,) = scale_records(settings, paused["run_id"])
    assert (record.status, record.approval, record.approver) == ("rejected", "rejected", "bob")
    assert record.reason == "rejected by bob: not during the sale"
    assert effects_of(settings, paused["run_id"]) == 0
    assert script.seen["optimizer"][0] == {"status": "rejected", "error": "rejected by bob: not during the sale"}
    assert done["decision"]["actions"] == []


@pytest.mark.parametrize(("mode", "status", "replicas", "approver"), [
    ("auto", "ok", 6, "auto (--approvals auto)"),
    ("deny", "rejected", 4, "auto (--approvals deny)"),
])
def test_auto_and_deny_modes_do_not_pause(home: Path, approval_policy: Path, script: MeshScript, mode: str,
                                          status: str, replicas: int, approver: str) -> None:
    settings = Settings(model="offline", node_retries=0, approvals=mode)

    result = agentmesh.run_goal("Scale checkout-api to 6 replicas", settings=settings)

    assert result["status"] == "done", result["error"]
    assert checkout_replicas(settings) == replicas
    (record,) = scale_records(settings, result["run_id"])
    assert (record.status, record.approver) == (status, approver)
    assert script.seen["optimizer"][0]["status"] == status
    assert effects_of(settings, result["run_id"]) == (1 if status == "ok" else 0)


def test_a_call_without_approval_in_the_policy_does_not_pause(home: Path, script: MeshScript) -> None:
    settings = Settings(model="offline", node_retries=0)

    result = agentmesh.run_goal("Scale checkout-api to 6 replicas", settings=settings, approvals="wait")

    assert result["status"] == "done", result["error"]
    (record,) = scale_records(settings, result["run_id"])
    assert (record.status, record.approval) == ("ok", None)


def test_approving_twice_is_refused(home: Path, approval_policy: Path, script: MeshScript) -> None:
    settings = Settings(model="offline", node_retries=0)
    paused = asyncio.run(start_paused(settings, script))
    asyncio.run(aapprove(paused["run_id"], approved=True, approver="alice", settings=settings))

    with pytest.raises(UserError, match="nothing waiting for approval"):
        asyncio.run(aapprove(paused["run_id"], approved=True, approver="mallory", settings=settings))
    assert checkout_replicas(settings) == 6
    assert effects_of(settings, paused["run_id"]) == 1


def test_a_dry_run_does_not_wait_for_approval(home: Path, approval_policy: Path, script: MeshScript) -> None:
    settings = Settings(model="offline", node_retries=0, dry_run=True)

    result = agentmesh.run_goal("Scale checkout-api to 6 replicas", settings=settings, approvals="wait")

    assert result["status"] == "done", result["error"]
    assert checkout_replicas(settings) == 4
    (record,) = scale_records(settings, result["run_id"])
    assert (record.status, record.approval) == ("dry_run", None)
    assert record.reason == "dry run: not executed (it would need approval)"


async def test_resuming_without_a_verdict_keeps_waiting(home: Path, approval_policy: Path, script: MeshScript) -> None:
    # `agentmesh runs resume` on a run that waits for a person must not decide for that person.
    settings = Settings(model="offline", node_retries=0)
    paused = await start_paused(settings, script)

    resumed = await agentmesh.aresume_run(paused["run_id"], settings=settings, approvals="wait")

    assert resumed["status"] == "waiting_approval", resumed["status"]
    (record,) = scale_records(settings, paused["run_id"])
    assert (record.status, record.approval) == ("pending_approval", "pending")
    assert checkout_replicas(settings) == 4

    done = await aapprove(paused["run_id"], approved=True, approver="alice", settings=settings)

    assert done["status"] == "done", done["error"]
    assert checkout_replicas(settings) == 6
    (record,) = scale_records(settings, paused["run_id"])
    assert (record.status, record.approver) == ("ok", "alice")
    assert effects_of(settings, paused["run_id"]) == 1
