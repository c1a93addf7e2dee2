"""A promotion that needs approval is a `prompt_promotion` run whose `promote_prompt` call waits for a person,
like any tool call that needs approval: approved, the version becomes active; rejected, it is marked so."""

from __future__ import annotations

from pathlib import Path

from agentmesh.core.settings import Settings
from agentmesh.evolution.proposals import add_instruction
from agentmesh.persistence.database import get_engine
from agentmesh.prompts import versions
from agentmesh.runtime.approvals import aapprove
from agentmesh.runtime.run import arun_goal


def _pending(engine, role: str) -> int:  # type: ignore[no-untyped-def]
    versions.ensure_imported(engine, role)
    text = versions.get_version(engine, role, 1)["text"]
    number = versions.add_version(engine, role, add_instruction(text, "Quote numbers."), parent=1,
                                  source="evolution", rationale="r")
    versions.set_status(engine, role, number, "pending_approval", actor="evolution", reason="p = 0.01",
                        evidence={"p_value": 0.01})
    return number


async def test_an_approved_promotion_takes_effect_a_rejected_one_never(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", model="offline")
    engine = get_engine(settings.resolved_database_url)
    v2 = _pending(engine, "analyst")

    run = await arun_goal(f"Promote version {v2} of the analyst prompt", graph="prompt_promotion", settings=settings,
                          approvals="wait")
    assert run["status"] == "waiting_approval" and [c["tool"] for c in run["pending_approvals"]] == ["promote_prompt"]
    assert versions.active_version(engine, "analyst") == 1
    done = await aapprove(run["run_id"], approved=True, approver="dana", settings=settings)
    assert done["status"] == "done" and done["decision"]["outcome"] == "achieved"
    assert versions.active_version(engine, "analyst") == v2
    event = versions.history(engine, "analyst")[-1]
    assert (event["action"], event["actor"], event["evidence"]) == ("approve", "dana", {"p_value": 0.01})

    v3 = _pending(engine, "analyst")
    run = await arun_goal(f"Promote version {v3} of the analyst prompt", graph="prompt_promotion", settings=settings,
                          approvals="wait")
    done = await aapprove(run["run_id"], approved=False, approver="erin", reason="not tonight", settings=settings)
    assert done["decision"]["outcome"] == "not_achieved" and "erin" in done["decision"]["summary"]
    assert versions.active_version(engine, "analyst") == v2
    assert versions.get_version(engine, "analyst", v3)["status"] == "rejected"


async def test_a_version_without_evidence_is_never_put_up_for_approval(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", model="offline")
    engine = get_engine(settings.resolved_database_url)
    versions.ensure_imported(engine, "analyst")
    text = versions.get_version(engine, "analyst", 1)["text"]
    v2 = versions.add_version(engine, "analyst", add_instruction(text, "Guess."), parent=1, source="manual",
                              rationale="untested")
    run = await arun_goal(f"Promote version {v2} of the analyst prompt", graph="prompt_promotion", settings=settings,
                          approvals="auto")
    assert run["status"] == "done" and run["decision"]["outcome"] == "not_achieved" and not run["pending_approvals"]
    assert "candidate, not awaiting approval" in run["decision"]["summary"]
    assert versions.active_version(engine, "analyst") == 1
