"""Tunable settings in a prompt version's front matter: written by `with_settings`, proposed by the rules,
and used by runs (the mesh's plan rounds come from the strategist's active version)."""

from __future__ import annotations

from pathlib import Path

from agentmesh.core.settings import Settings
from agentmesh.evolution.proposals import Failure, ProposalRequest, rule_proposals, with_settings
from agentmesh.persistence.database import get_engine
from agentmesh.prompts import PromptTemplate, load_prompt, versions
from agentmesh.runtime.run import arun_goal


def test_settings_live_in_the_front_matter_and_change_the_sha() -> None:
    text = load_prompt("optimizer").path.read_text(encoding="utf-8")  # type: ignore[union-attr]
    changed = with_settings(text, {"tools": ["get_ticket", "resolve_ticket"], "tool_rounds": 3})
    before, after = PromptTemplate.from_text(text), PromptTemplate.from_text(changed)
    assert (after.tools, after.tool_rounds, after.plan_rounds) == (["get_ticket", "resolve_ticket"], 3, None)
    assert after.body == before.body and after.sha != before.sha
    assert PromptTemplate.from_text(with_settings(changed, {"tools": None})).tools is None  # back to auto


def test_rules_propose_a_tool_subset_and_more_plan_rounds(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", model="offline")
    paging = Failure(scenario="a", component="forbidden_calls",
                     reason="forbidden call notify_operations(message='x', severity='info') by optimizer (ok)")
    request = ProposalRequest(role="optimizer", current=load_prompt("optimizer").path.read_text(), failures=[paging],  # type: ignore[union-attr]
                              count=5, settings=settings)
    (subset,) = [c for c in rule_proposals(request) if c.settings]
    assert "notify_operations" not in subset.settings["tools"] and "escalate_ticket" in subset.settings["tools"]
    assert PromptTemplate.from_text(subset.text).tools == subset.settings["tools"]

    missing = Failure(scenario="b", component="required_calls", reason="missing call scale_service (made: get_service_metrics)")
    strategist = load_prompt("strategist").path.read_text()  # type: ignore[union-attr]
    (more,) = rule_proposals(ProposalRequest(role="strategist", current=strategist, failures=[missing], count=5,
                                             settings=settings))
    assert more.settings == {"plan_rounds": settings.max_plan_rounds + 1} and "plan round" in more.instruction


async def test_the_mesh_plans_as_many_rounds_as_the_strategist_version_says(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", model="offline")
    # The asked count leaves the latency target missed once verified: the offline strategist replans.
    goal = "scale checkout-api to 5 replicas and get its p95 under 100 ms"
    engine = get_engine(settings.resolved_database_url)
    versions.ensure_imported(engine, "strategist")
    run = await arun_goal(goal, settings=settings, approvals="auto")
    assert any(s["id"].startswith("r2") for s in run["plan"]["steps"])  # settings.max_plan_rounds = 2

    text = versions.get_version(engine, "strategist", 1)["text"]
    v2 = versions.add_version(engine, "strategist", with_settings(text, {"plan_rounds": 1}), parent=1,
                              source="manual", rationale="one round")
    versions.promote(engine, "strategist", v2, actor="test", reason="try it")
    run = await arun_goal(goal, settings=settings, approvals="auto")
    assert not any(s["id"].startswith("r2") for s in run["plan"]["steps"])
    assert run["prompt_versions"]["strategist"].startswith(f"{v2}@")
