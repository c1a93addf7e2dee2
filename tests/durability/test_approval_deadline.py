"""An approval deadline: a call left waiting past the policy's `approval_timeout_s` gets `approval_default`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from agentmesh import Settings, UserError, arun_goal
from agentmesh.gateway.policy import DEFAULT_POLICY_FILE
from agentmesh.persistence import audit, tables
from agentmesh.persistence.database import utcnow
from agentmesh.plugins.operations.world import World
from agentmesh.runtime.approvals import aapprove
from agentmesh.runtime.components import components
from agentmesh.runtime.run import aresume_run

GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"


@pytest.mark.parametrize("default", ["reject", "approve"])
async def test_an_expired_approval_takes_the_policy_default(home: Path, default: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "policy.toml").write_text(
        DEFAULT_POLICY_FILE.read_text()
        .replace("approval_required = []", 'approval_required = ["scale_service"]')
        .replace("# approval_timeout_s = 3600", "approval_timeout_s = 600")
        .replace('approval_default = "reject"', f'approval_default = "{default}"')
    )
    settings = Settings()
    paused = await arun_goal(GOAL, settings=settings)
    assert paused["status"] == "waiting_approval"
    (call,) = paused["pending_approvals"]
    engine = components(settings).engine
    # Nobody answered for longer than the deadline.
    with engine.begin() as conn:
        conn.execute(update(tables.tool_calls).where(tables.tool_calls.c.tool_call_id == call["id"])
                     .values(started=utcnow() - timedelta(seconds=601)))
    with pytest.raises(UserError, match="deadline"):
        await aapprove(paused["run_id"], call["id"], approved=True, approver="late-alice", settings=settings)

    # Any later call that needs approval is denied, so the run can end here.
    final = await aresume_run(paused["run_id"], settings=settings, approvals="deny")
    assert final["status"] == "done"
    record = audit.get_call(engine, paused["run_id"], call["id"])
    assert record is not None and record.approver == "policy (approval deadline passed)"
    assert record.status == ("ok" if default == "approve" else "rejected")
    replicas = next(s["replicas"] for s in components(settings).resources.get(World).snapshot()["services"] if s["name"] == "checkout-api")
    assert (replicas != 4) == (default == "approve")
