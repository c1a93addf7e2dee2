"""Evolution end to end: with the offline model (the mechanism), with a model that reads its prompt (a real
improvement awaits a person's approval through `agentmesh approve`, a harmful one is rejected, rollback restores
the earlier behaviour) and with a model whose behaviour depends on its settings (a tool subset that helps is
promoted, too few tool rounds are rejected)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prompt_sensitive import (
    HARMFUL_INSTRUCTION,
    PromptSensitiveModel,
    ToolHappyModel,
    write_paging_scenario,
    write_suite,
)
from sqlalchemy import select
from typer.testing import CliRunner

from agentmesh.core.settings import Settings
from agentmesh.evaluation import load_scenarios
from agentmesh.evolution.flow import aevolve
from agentmesh.evolution.graph import EvolutionOptions
from agentmesh.evolution.proposals import (
    Candidate,
    ProposalRequest,
    add_instruction,
    rule_proposals,
    with_settings,
)
from agentmesh.evolution.statistics import split_scenarios
from agentmesh.interfaces.cli import app
from agentmesh.persistence.database import get_engine
from agentmesh.persistence.tables import evolution_rounds
from agentmesh.prompts import load_prompt, versions
from agentmesh.runtime.run import arun_goal

ABOVE = ["refund-cap-0", "refund-cap-2", "refund-cap-6", "refund-cap-7", "refund-cap-8", "refund-cap-9", "refund-cap-1"]
WITHIN = ["refund-small-0", "refund-small-1", "refund-small-2"]
ABOVE_GOAL = "Customer on ticket T-1006 wants $450 back for a failed checkout. Please resolve the ticket."


def _suite(tmp_path: Path) -> Path:
    suite = tmp_path / "suite"
    write_suite(suite, above=ABOVE, within=WITHIN)
    train, held = split_scenarios(load_scenarios([suite]), held_out=0.3)
    assert sorted(s.id for s in held) == ["refund-cap-1", "refund-small-2"]  # 6 above-cap scenarios train
    return suite


def _tools(run: dict) -> list[str]:
    return [c["tool"] for s in run["steps"] for c in s.get("tool_calls") or []]


async def test_offline_evolution_proposes_evaluates_rejects_and_records(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    write_paging_scenario(suite, "refund-paged-0")
    write_suite(suite, above=[], within=["refund-small-0", "refund-small-1", "refund-small-2"])
    (suite / "refund-small-1.yaml").unlink()
    settings = Settings(home=tmp_path / "home", model="offline")
    train, held = split_scenarios(load_scenarios([suite]), held_out=0.2)
    assert [s.id for s in held] == ["refund-small-2"]  # the offline model's one failure is in train

    (report,) = await aevolve([str(suite)], EvolutionOptions(role="optimizer", candidates=1, trials=1, held_out=0.2,
                                                             settings=settings))

    engine = get_engine(settings.resolved_database_url)
    assert report["baseline"]["train"]["per_scenario"]["refund-paged-0"]["pass_hat_k"] == 0.0
    (candidate,) = report["candidates"]
    assert "notify_operations" in candidate["instruction"] and "failing scenario" in candidate["rationale"]
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
    assert row["flow_run_id"] and Path(row["html_path"]).is_file()

    # The round's HTML page and Prefect artifact carry the candidates, both splits' scores and the decision.
    html = Path(report["html"]).read_text(encoding="utf-8")
    for text in (f"v{candidate['version']}", "rejected", "held out", "sign test", "refund-small-2",
                 candidate["instruction"][:40], "kept"):
        assert text in html, text
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["evolution-optimizer"])))
    assert any(f"v{candidate['version']}" in str(a.data) and "rejected" in str(a.data) for a in artifacts)


def _good_and_harmful(request: ProposalRequest) -> list[Candidate]:
    """The rule-based instruction, and a harmful one beside it (a proposer can be wrong)."""
    found = [c for c in rule_proposals(ProposalRequest(**{**request.__dict__, "count": 5})) if not c.settings][:1]
    harmful = Candidate(text=add_instruction(request.current, HARMFUL_INSTRUCTION), instruction=HARMFUL_INSTRUCTION,
                        rationale="a proposal that fixes the failures by escalating everything")
    return [*found, harmful]


async def test_an_improvement_waits_for_approval_a_harmful_one_is_rejected_and_rollback_restores(
        tmp_path: Path, home: Path) -> None:
    suite = _suite(tmp_path)
    settings = Settings()
    model = PromptSensitiveModel()

    (report,) = await aevolve([str(suite)], EvolutionOptions(
        role="optimizer", candidates=2, trials=1, held_out=0.3, settings=settings, chat_model=model,
        proposer=_good_and_harmful, require_approval=True))

    good, harmful = report["candidates"]
    assert "escalate_ticket" in good["instruction"] and harmful["instruction"] == HARMFUL_INSTRUCTION
    assert report["baseline"]["train"]["pass_hat_k"] == 0.25  # only the two small refunds pass
    assert good["decision"] == "pending_approval", good["why"]
    assert good["train"]["test"]["wins"] == 6 and good["train"]["test"]["losses"] == 0
    assert good["train"]["test"]["p_value"] == pytest.approx(1 / 64)
    assert good["held_out"]["test"]["losses"] == 0 and good["held_out"]["pass_hat_k"] == 1.0
    # The harmful one fixes the same six scenarios but breaks the small refunds: not significant, and a
    # held-out regression.
    assert harmful["decision"] == "rejected"
    assert harmful["train"]["test"]["wins"] == 6 and harmful["train"]["test"]["losses"] == 2
    assert "held-out" in harmful["why"] and "refund-small-2" in harmful["why"]

    # The evidence supports the good one, but a person must approve: a promotion run waits on its
    # promote_prompt call, like any tool call needing approval; nothing is promoted until then.
    engine = get_engine(settings.resolved_database_url)
    run_id = report["approval_run_id"]
    assert report["outcome"] == "pending_approval" and f"agentmesh approve {run_id}" in report["summary"]
    assert f"agentmesh approve {run_id}" in Path(report["html"]).read_text(encoding="utf-8")
    assert versions.active_version(engine, "optimizer") == 1
    runner = CliRunner()
    shown = runner.invoke(app, ["runs", "show", run_id, "--json"])
    assert '"status": "waiting_approval"' in shown.output and "promote_prompt" in shown.output

    # `agentmesh approve` runs its own event loop: in a thread, as from another terminal.
    approved = await asyncio.to_thread(runner.invoke, app, ["approve", run_id, "--as", "carol"])
    assert approved.exit_code == 0, approved.output
    assert versions.active_version(engine, "optimizer") == good["version"]
    approval = versions.history(engine, "optimizer")[-1]
    assert (approval["action"], approval["actor"], approval["version"]) == ("approve", "carol", good["version"])
    assert approval["evidence"]["train"]["p_value"] == pytest.approx(1 / 64) and run_id in approval["reason"]
    again = await asyncio.to_thread(runner.invoke, app, ["approve", run_id, "--as", "carol"])
    assert "nothing waiting for approval" in str(again.exception)  # nothing is approved or promoted twice

    # A run now uses the promoted version (recorded in the run) and escalates; after a rollback it is back
    # to the earlier version and the earlier behaviour.
    run = await arun_goal(ABOVE_GOAL, settings=settings, approvals="auto", chat_model=model)
    assert "escalate_ticket" in _tools(run) and run["prompt_versions"]["optimizer"].startswith(f"{good['version']}@")
    assert versions.rollback(engine, "optimizer", actor="test") == (good["version"], 1)
    run = await arun_goal(ABOVE_GOAL, settings=settings, approvals="auto", chat_model=model)
    assert "escalate_ticket" not in _tools(run) and run["prompt_versions"]["optimizer"].startswith("1@")


async def test_a_settings_change_that_helps_is_promoted_one_that_hurts_rejected_and_rollback_restores(
        tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    settings = Settings(home=tmp_path / "home", model="offline")
    model = ToolHappyModel()

    def tools_and_too_few_rounds(request: ProposalRequest) -> list[Candidate]:
        """The rule-based settings change, and one that leaves too few tool rounds to act."""
        (found,) = [c for c in rule_proposals(ProposalRequest(**{**request.__dict__, "count": 5})) if c.settings]
        harmful = Candidate(text=with_settings(request.current, {"tool_rounds": 1}), instruction="tool_rounds: 1",
                            settings={"tool_rounds": 1}, rationale="fewer turns, fewer stray calls")
        return [found, harmful]

    (report,) = await aevolve([str(suite)], EvolutionOptions(
        role="optimizer", candidates=2, trials=1, held_out=0.3, settings=settings, chat_model=model,
        proposer=tools_and_too_few_rounds))

    subset, few = report["candidates"]
    engine = get_engine(settings.resolved_database_url)
    # Paging operations after every escalation fails the above-cap scenarios; the evolution agent proposes the
    # optimizer's tools without notify_operations (a settings change in the prompt's front matter).
    assert report["baseline"]["train"]["pass_hat_k"] == 0.25
    assert "notify_operations" not in subset["settings"]["tools"]
    assert {"resolve_ticket", "escalate_ticket"} <= set(subset["settings"]["tools"])
    assert subset["decision"] == "promoted", subset["why"]
    assert subset["train"]["test"]["wins"] == 6 and subset["train"]["test"]["p_value"] == pytest.approx(1 / 64)
    assert few["decision"] == "rejected" and few["train"]["test"]["losses"] == 2 and "refund-small-2" in few["why"]
    assert versions.active_version(engine, "optimizer") == subset["version"]
    assert load_prompt("optimizer", engine=engine).tools == subset["settings"]["tools"]
    assert "-tools: auto" in versions.diff(engine, "optimizer", 1, subset["version"])
    html = Path(report["html"]).read_text(encoding="utf-8")
    assert "Settings changed" in html and "tool_rounds: 1" in html

    # Runs use the promoted settings and record the version; a rollback restores the tool and the paging.
    run = await arun_goal(ABOVE_GOAL, settings=settings, approvals="auto", chat_model=model)
    assert "escalate_ticket" in _tools(run) and "notify_operations" not in _tools(run)
    assert run["prompt_versions"]["optimizer"].startswith(f"{subset['version']}@")
    versions.rollback(engine, "optimizer", actor="test")
    run = await arun_goal(ABOVE_GOAL, settings=settings, approvals="auto", chat_model=model)
    assert "notify_operations" in _tools(run) and run["prompt_versions"]["optimizer"].startswith("1@")
