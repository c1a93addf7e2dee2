"""Evolution end to end: with the offline model (the mechanism), and with a model that reads its prompt (a real
improvement promoted, a harmful one rejected, rollback restoring the earlier behaviour)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prompt_sensitive import HARMFUL_INSTRUCTION, PromptSensitiveModel, write_suite
from sqlalchemy import select

from agentmesh._resources import bundled
from agentmesh.evaluation import load_scenarios
from agentmesh.evolution import versions
from agentmesh.evolution._tables import evolution_rounds
from agentmesh.evolution.flow import aevolve
from agentmesh.evolution.graph import EvolutionOptions
from agentmesh.evolution.proposals import Candidate, ProposalRequest, add_instruction, rule_proposals
from agentmesh.evolution.statistics import split_scenarios
from agentmesh.runtime import arun_goal
from agentmesh.settings import Settings
from agentmesh.store import get_engine

ABOVE = ["refund-cap-0", "refund-cap-2", "refund-cap-6", "refund-cap-7", "refund-cap-8", "refund-cap-9", "refund-cap-1"]
WITHIN = ["refund-small-0", "refund-small-1", "refund-small-2"]


async def test_offline_evolution_proposes_evaluates_rejects_and_records(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("high-priority-refunds", "broken-blender", "double-charge"):
        shutil.copy(bundled("evals") / "support" / f"{name}.yaml", suite)
    settings = Settings(home=tmp_path / "home", model="offline")
    train, held = split_scenarios(load_scenarios([suite]), held_out=0.2)
    assert "support-high-priority-refunds" in [s.id for s in train]  # the offline model's one failure is in train
    assert held

    (report,) = await aevolve([str(suite)], EvolutionOptions(role="optimizer", candidates=1, trials=1, held_out=0.2,
                                                             settings=settings))

    engine = get_engine(settings.resolved_database_url)
    (candidate,) = report["candidates"]
    assert candidate["instruction"] and "failing scenario" in candidate["rationale"]
    # The offline model does not read its prompt: nothing improves, so nothing is promoted.
    assert candidate["decision"] == "rejected" and report["outcome"] == "kept"
    assert candidate["train"]["test"]["wins"] == 0 and "p = 1" in candidate["why"]
    assert versions.active_version(engine, "optimizer") == 1
    rows = {r["version"]: r for r in versions.list_versions(engine, "optimizer")}
    assert rows[candidate["version"]]["status"] == "rejected" and rows[1]["source"] == "file"
    actions = [(e["action"], e["version"]) for e in versions.history(engine, "optimizer")]
    assert actions == [("import", 1), ("propose", candidate["version"]), ("reject", candidate["version"])]
    with engine.connect() as conn:
        (row,) = conn.execute(select(evolution_rounds)).mappings().all()
    assert row["decision"] == "kept" and row["report"]["candidates"][0]["version"] == candidate["version"]

    # The round's HTML page and Prefect artifact carry the candidates, both splits' scores and the decision.
    html = Path(report["html"]).read_text(encoding="utf-8")
    for text in (f"v{candidate['version']}", "rejected", "held out", "sign test", "support-double-charge",
                 candidate["instruction"][:40]):
        assert text in html, text
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["evolution-optimizer"])))
    assert any(f"v{candidate['version']}" in str(a.data) and "rejected" in str(a.data) for a in artifacts)


def _good_and_harmful(request: ProposalRequest) -> list[Candidate]:
    """The rule-based proposal, and a harmful one beside it (a proposer can be wrong)."""
    found = rule_proposals(ProposalRequest(**{**request.__dict__, "count": 1}))
    harmful = Candidate(text=add_instruction(request.current, HARMFUL_INSTRUCTION), instruction=HARMFUL_INSTRUCTION,
                        rationale="a proposal that fixes the failures by escalating everything")
    return [*found, harmful]


async def test_a_real_improvement_is_promoted_a_harmful_one_rejected_and_rollback_restores(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    write_suite(suite, above=ABOVE, within=WITHIN)
    train, held = split_scenarios(load_scenarios([suite]), held_out=0.3)
    assert sorted(s.id for s in held) == ["refund-cap-1", "refund-small-2"]  # 6 above-cap scenarios train
    settings = Settings(home=tmp_path / "home", model="offline")
    model = PromptSensitiveModel()

    (report,) = await aevolve([str(suite)], EvolutionOptions(
        role="optimizer", candidates=2, trials=1, held_out=0.3, settings=settings, chat_model=model,
        proposer=_good_and_harmful))

    good, harmful = report["candidates"]
    assert "escalate_ticket" in good["instruction"] and harmful["instruction"] == HARMFUL_INSTRUCTION
    assert report["baseline"]["train"]["pass_hat_k"] == 0.25  # only the two small refunds pass
    assert good["decision"] == "promoted", good["why"]
    assert good["train"]["test"]["wins"] == 6 and good["train"]["test"]["losses"] == 0
    assert good["train"]["test"]["p_value"] == pytest.approx(1 / 64)
    assert good["held_out"]["test"]["losses"] == 0 and good["held_out"]["pass_hat_k"] == 1.0
    # The harmful one fixes the same six scenarios but breaks the small refunds: not significant, and a
    # held-out regression.
    assert harmful["decision"] == "rejected"
    assert harmful["train"]["test"]["wins"] == 6 and harmful["train"]["test"]["losses"] == 2
    assert "held-out" in harmful["why"] and "refund-small-2" in harmful["why"]

    engine = get_engine(settings.resolved_database_url)
    assert versions.active_version(engine, "optimizer") == good["version"]
    promotion = [e for e in versions.history(engine, "optimizer") if e["action"] == "promote"][-1]
    assert promotion["actor"].startswith("evolution") and promotion["evidence"]["train"]["p_value"] == pytest.approx(1 / 64)

    # A run now uses the promoted version (recorded in the run) and escalates; after a rollback it is back
    # to the earlier version and the earlier behaviour.
    goal = "Customer on ticket T-1006 wants $450 back for a failed checkout. Please resolve the ticket."

    async def escalations() -> tuple[int, str]:
        run = await arun_goal(goal, settings=settings, approvals="auto", chat_model=model)
        tools = [c["tool"] for s in run["steps"] for c in s.get("tool_calls") or []]
        return tools.count("escalate_ticket"), run["prompt_versions"]["optimizer"]

    count, used = await escalations()
    assert count >= 1 and used.startswith(f"{good['version']}@")
    assert versions.rollback(engine, "optimizer", actor="test") == (good["version"], 1)
    count, used = await escalations()
    assert count == 0 and used.startswith("1@")
