"""Plans, reviews and decisions of the offline model, from hand-built strategist inputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from offline_harness import output_schema

from agentmesh.core.messages import render_step_input
from agentmesh.core.schemas import Decision, Plan, Review
from agentmesh.models.offline import OfflineChatModel
from agentmesh.plugins.operations.offline import OperationsRules

RULES = OperationsRules()


def ask(name: str, **sections: Any) -> dict[str, Any]:
    goal = sections.pop("goal")
    model = OfflineChatModel(rules=RULES).bind_tools([output_schema(name)], tool_choice=name)
    reply = model.invoke([SystemMessage("You are the strategist."),
                          HumanMessage(render_step_input(goal=goal, **sections))])
    assert [c["name"] for c in reply.tool_calls] == [name]
    return reply.tool_calls[0]["args"]


def roles(plan: Plan) -> list[str]:
    return [s.role for s in plan.steps]


@pytest.mark.parametrize("goal", [
    "checkout-api p95 is at 900 ms, keep it under 300 ms without doubling cost",
    "Payments are sluggish for customers since this morning; bring payments-api latency below 250ms.",
    "search-api keeps timing out under load. Please fix it.",
    "We pay too much for the recommendations service — cut cost by 30% while keeping p95 where it is.",
])
def test_a_change_to_a_service_is_acted_on_then_verified(goal: str) -> None:
    plan = Plan.model_validate(ask("submit_plan", goal=goal))
    assert roles(plan) == ["optimizer", "analyst"]
    assert plan.steps[1].depends_on == [plan.steps[0].id]
    assert all(s.instruction.startswith("Part 1 of 1:") for s in plan.steps)
    assert "verify" in plan.steps[1].instruction.lower()


def test_plan_instructions_restate_the_part_and_its_target() -> None:
    plan = Plan.model_validate(ask("submit_plan", goal="Get payments-api p95 below 250 ms"))
    assert "payments-api" in plan.steps[0].instruction
    assert "250" in plan.objective
    assert "p95 at most 250 ms" in plan.steps[0].instruction


def test_two_asks_get_a_part_each() -> None:
    goal = "roll search back to the release before the rc, and get the duplicates out of the 2024 shop orders"
    plan = Plan.model_validate(ask("submit_plan", goal=goal))
    assert roles(plan) == ["optimizer", "analyst", "optimizer", "analyst"]
    assert [s.instruction[:11] for s in plan.steps] == ["Part 1 of 2", "Part 1 of 2", "Part 2 of 2", "Part 2 of 2"]
    assert "roll search back" in plan.steps[0].instruction and "shop orders" in plan.steps[2].instruction


@pytest.mark.parametrize("goal", [
    "How is checkout-api doing right now?",
    "What is the p95 latency of auth-api?",
    "Report the CPU of every service, don't change anything.",
    "status of payments-api",
])
def test_questions_get_no_optimizer(goal: str) -> None:
    plan = Plan.model_validate(ask("submit_plan", goal=goal))
    assert "optimizer" not in roles(plan)
    assert roles(plan)[0] == "analyst"


@pytest.mark.parametrize(("goal", "expected"), [
    ("The customers table is full of duplicate rows and nulls; tidy it up.", ["optimizer", "analyst"]),
    ("Clean orders.parquet", ["optimizer", "analyst"]),
    ("How good is the quality of the sensor_readings data?", ["analyst"]),
    ("Work through the support backlog: refund what is fair, escalate the rest.", ["optimizer"]),
    ("Customers are complaining in tickets; resolve the urgent ones", ["optimizer"]),
    ("Which tickets are most urgent?", ["analyst"]),
])
def test_data_and_support_goals_route_to_their_steps(goal: str, expected: list[str]) -> None:
    plan = Plan.model_validate(ask("submit_plan", goal=goal))
    assert roles(plan) == expected


@pytest.mark.parametrize("goal", ["", "hello there", "Write me a poem about autumn", "ßðđ¶ 42"])
def test_a_goal_in_no_domain_gets_one_listing_step(goal: str) -> None:
    plan = Plan.model_validate(ask("submit_plan", goal=goal))
    assert roles(plan) == ["analyst"]
    assert "list" in plan.steps[0].instruction.lower()


def test_with_structured_output_plans_through_the_default_path() -> None:
    plan = OfflineChatModel(rules=RULES).with_structured_output(Plan).invoke("cut checkout-api cost by 20%")
    assert isinstance(plan, Plan)
    assert roles(plan) == ["optimizer", "analyst"]
    raw = OfflineChatModel(rules=RULES).with_structured_output(Plan, include_raw=True).invoke("how is checkout-api?")
    assert raw["parsing_error"] is None and raw["raw"].usage_metadata["total_tokens"] > 0


def test_with_structured_output_fills_a_foreign_schema() -> None:
    from pydantic import BaseModel, Field

    class Verdict(BaseModel):
        label: str = Field(min_length=2)
        score: int = Field(ge=3)
        tags: list[str] = Field(min_length=1)

    assert isinstance(OfflineChatModel(rules=RULES).with_structured_output(Verdict).invoke("anything"), Verdict)


PLAN = {"objective": "x", "steps": [{"id": "s1", "role": "analyst"}, {"id": "s3", "role": "optimizer"},
                                    {"id": "s4", "role": "analyst"}]}


def findings(*summaries: str) -> list[dict[str, Any]]:
    return [{"step_id": f"s{i}", "agent": "analyst", "summary": s} for i, s in enumerate(summaries, 1)]


def test_review_decides_when_the_target_is_met() -> None:
    review = Review.model_validate(ask(
        "submit_review", goal="keep checkout-api under 300 ms", plan=PLAN, round_info=(1, 3),
        findings=findings("checkout-api: p95 940 ms. Target missed.", "Verification: p95 236 ms. Target met."),
        actions=[{"tool": "scale_service", "args": {"service": "checkout-api", "replicas": 5}, "status": "ok"}]))
    assert review.verdict == "decide"


def test_review_replans_when_verification_misses_and_rounds_remain() -> None:
    sections = dict(goal="keep checkout-api under 300 ms", plan=PLAN,
                    findings=findings("Verification of checkout-api: p95 420 ms. Target missed: still above 300 ms."),
                    actions=[{"tool": "scale_service", "args": {"service": "checkout-api", "replicas": 5},
                              "status": "ok"}])
    review = Review.model_validate(ask("submit_review", round_info=(1, 3), **sections))
    assert review.verdict == "replan"
    assert [s.role for s in review.new_steps] == ["optimizer", "analyst"]
    assert not {s.id for s in review.new_steps} & {"s1", "s3", "s4"}
    assert review.new_steps[1].depends_on == [review.new_steps[0].id]
    # The last round decides whatever happened.
    assert Review.model_validate(ask("submit_review", round_info=(3, 3), **sections)).verdict == "decide"


def test_review_replans_after_a_failed_action_but_not_after_a_refusal() -> None:
    base = dict(goal="clean the orders dataset", plan=PLAN, round_info=(1, 2), findings=findings("orders: 12 issues"))
    failed = [{"tool": "clean_dataset", "args": {"dataset": "orders"}, "status": "failed", "reason": "disk full"}]
    refused = [{"tool": "clean_dataset", "args": {"dataset": "orders"}, "status": "refused", "reason": "protected"}]
    assert ask("submit_review", actions=failed, **base)["verdict"] == "replan"
    assert ask("submit_review", actions=refused, **base)["verdict"] == "decide"


@pytest.mark.parametrize(("actions", "summaries", "goal", "outcome"), [
    ([("scale_service", "ok")], ["Verification: p95 236 ms. Target met."], "keep checkout-api under 300 ms", "achieved"),
    ([("scale_service", "ok")], ["Verification: p95 420 ms. Target missed."], "keep checkout-api under 300 ms",
     "partially_achieved"),
    ([("scale_service", "refused")], ["checkout-api: p95 900 ms"], "keep checkout-api under 300 ms", "not_achieved"),
    ([], ["checkout-api: p95 120 ms. Target met."], "how is checkout-api?", "no_action_needed"),
    ([("escalate_ticket", "ok"), ("escalate_ticket", "ok")], ["2 tickets"], "handle urgent tickets", "escalated"),
    ([("resolve_ticket", "ok"), ("escalate_ticket", "ok")], ["2 tickets"], "handle urgent tickets", "achieved"),
    ([], [], "sing a song", "no_action_needed"),
])
def test_decision_outcome_follows_actions_and_verification(
    actions: list[tuple[str, str]], summaries: list[str], goal: str, outcome: str
) -> None:
    acts = [{"tool": t, "args": {"x": i}, "status": s, "reason": "policy limit" if s != "ok" else None}
            for i, (t, s) in enumerate(actions)]
    decision = Decision.model_validate(ask("submit_decision", goal=goal, findings=findings(*summaries), actions=acts))
    assert decision.outcome == outcome
    if any(s != "ok" for _, s in actions):
        assert any("refused" in r for r in decision.open_risks)


def test_decision_cites_numbers_from_findings_and_actions() -> None:
    decision = Decision.model_validate(ask(
        "submit_decision", goal="keep checkout-api under 300 ms",
        findings=findings("checkout-api: p95 943.5 ms, 4 replicas", "Verification: p95 236.4 ms. Target met."),
        actions=[{"tool": "scale_service", "args": {"service": "checkout-api", "replicas": 5}, "status": "ok"}]))
    assert "236.4" in decision.rationale and "943.5" in decision.rationale
    assert '"replicas": 5' in decision.summary


def test_review_reads_the_plan_json_for_free_ids() -> None:
    plan = {"objective": "x", "steps": [{"id": "r1s1", "role": "optimizer"}]}
    review = ask("submit_review", goal="keep checkout-api under 300 ms", plan=plan, round_info=(1, 2),
                 findings=findings("Target missed"), actions=[{"tool": "scale_service", "args": {}, "status": "ok"}])
    assert "r1s1" not in {s["id"] for s in review["new_steps"]}
    json.dumps(review)
