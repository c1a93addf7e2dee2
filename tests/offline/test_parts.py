"""Steps on one part of a request ("Part k of n: …") against the real sample world, and the decision's outcome
from the parts' results."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from offline_harness import StepRun

from agentmesh.core.messages import render_step_input
from agentmesh.evaluation.scenario import SetupAction
from agentmesh.models.offline.conversation import read_conversation
from agentmesh.plugins.operations.evals import apply_setup
from agentmesh.plugins.operations.offline.outcome import part_decide
from agentmesh.plugins.operations.world import World

WRITES = {"scale_service", "restart_service", "rollback_service", "clean_dataset", "resolve_ticket",
          "escalate_ticket", "notify_operations"}


def writes(calls: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, args) for name, args, result in calls if name in WRITES and result["status"] == "ok"]


def test_a_service_named_by_its_description_is_the_one_scaled(run_step: StepRun, world: World) -> None:
    apply_setup(world, [SetupAction(set_service={"name": "auth-api", "arrival_rate_rps": 150})])
    goal = "the login thing is super slow since the marketing mail went out. sort it out pls"
    finding, calls = run_step(goal, role="optimizer", instruction="Part 1 of 1: fix it")
    assert calls[0][0] == "list_services"
    assert [(name, args["service"]) for name, args in writes(calls)] == [("scale_service", "auth-api")]
    assert "auth-api" in finding["summary"]


def test_an_unknown_service_changes_nothing_and_the_finding_says_it_does_not_exist(run_step: StepRun) -> None:
    finding, calls = run_step("pricing-api is falling over, give it 4 more replicas asap", role="optimizer",
                              instruction="Part 1 of 1: add capacity")
    assert writes(calls) == []
    assert "[part 1/1 not done]" in finding["summary"] and "pricing-api does not exist" in finding["summary"]


def test_a_users_wrong_diagnosis_gives_way_to_the_metrics(run_step: StepRun, world: World) -> None:
    # checkout-api runs at 95% CPU and its release is as good as the one before: scale it, do not roll it back.
    finding, calls = run_step("checkout got slow right after yesterday's deploy, roll it back", role="optimizer",
                              instruction="Part 1 of 1: roll back")
    assert [name for name, _ in writes(calls)] == ["scale_service"]
    assert "CPU" in finding["summary"] and "release is not the cause" in finding["summary"]


def test_an_idle_service_is_not_given_replicas_it_cannot_use(run_step: StepRun, world: World) -> None:
    finding, calls = run_step("recs feels sluggish, add 4 more replicas to it", role="optimizer",
                              instruction="Part 1 of 1: add capacity")
    assert writes(calls) == []
    assert "[part 1/1 no change]" in finding["summary"] and "recommendations" in finding["summary"]
    assert world.get_service_metrics("recommendations")["replicas"] == 12


def test_each_part_acts_only_on_its_own_target(run_step: StepRun, world: World) -> None:
    goal = "Before the promo: give card payments 2 more replicas, and dedupe the marketing_leads list."
    first, calls = run_step(goal, role="optimizer", instruction="Part 1 of 2: scale")
    assert writes(calls) == [("scale_service", {"service": "payments-api", "replicas": 6})]
    second, calls = run_step(goal, role="optimizer", instruction="Part 2 of 2: dedupe")
    assert writes(calls) == []
    assert "marketing_leads does not exist" in second["summary"]


def test_tickets_picked_by_topic_read_the_messages_not_only_the_subjects(run_step: StepRun, world: World) -> None:
    apply_setup(world, [SetupAction(only_open_tickets=["T-1002", "T-1003", "T-1013", "T-1014", "T-1021", "T-1022"])])
    goal = "Hand every ticket about a late or missing delivery to a person for now; leave the others alone."
    finding, calls = run_step(goal, role="optimizer", instruction="Part 1 of 1: escalate")
    escalated = {args["ticket_id"] for name, args in writes(calls)}
    # T-1022's subject is SQL text; its message says the order is late. T-1003 says late, T-1014 delivered.
    assert escalated == {"T-1003", "T-1014", "T-1022"}
    assert all(name == "escalate_ticket" for name, _ in writes(calls))


def _decision(findings: list[str], actions: list[dict[str, Any]], goal: str) -> dict[str, Any]:
    text = render_step_input(goal=goal, findings=[{"step_id": f"s{i}", "agent": "x", "summary": s}
                                                  for i, s in enumerate(findings, 1)], actions=actions)
    return part_decide(read_conversation([HumanMessage(text)], []))


SCALE = {"tool": "scale_service", "args": {"service": "payments-api", "replicas": 6}, "status": "ok"}
ESCALATE = {"tool": "escalate_ticket", "args": {"ticket_id": "T-1"}, "status": "ok"}
TWO = "give card payments 2 more replicas, and dedupe the marketing_leads list"


@pytest.mark.parametrize(("findings", "actions", "goal", "outcome"), [
    (["[part 1/2 done] scaled payments-api", "[part 1/2 met] ok", "[part 2/2 done] cleaned x", "[part 2/2 met] ok"],
     [SCALE], TWO, "achieved"),
    (["[part 1/2 done] scaled payments-api", "[part 1/2 met] ok", "[part 2/2 not done] marketing_leads does not "
      "exist"], [SCALE], TWO, "partially_achieved"),
    (["[part 1/2 done] scaled payments-api", "[part 1/2 missed] p95 above"], [SCALE], "scale payments-api to 6",
     "partially_achieved"),
    (["[part 1/1 not done] pricing-api does not exist"], [], "scale pricing-api to 6", "not_achieved"),
    (["[part 1/1 no change] recommendations is idle"], [], "add 4 replicas to recs", "no_action_needed"),
    (["[part 1/1 report] auth-api healthy"], [], "how is auth-api?", "no_action_needed"),
    (["[part 0/0 unsupported] agentmesh cannot do that"], [], "order pizza", "not_achieved"),
    (["[part 1/1 escalated] Escalated T-1"], [ESCALATE], "escalate T-1", "escalated"),
    # A later round that finds nothing more to do keeps the change made before it.
    (["[part 1/1 done] scaled", "[part 1/1 missed] above", "[part 1/1 no change] no more", "[part 1/1 missed] x"],
     [SCALE], "get payments-api under 100 ms", "partially_achieved"),
    # A verification that reads "met" after no change does not make the part a success.
    (["[part 1/1 no change] already fine", "[part 1/1 met] fine"], [], "keep checkout-api under 800 ms",
     "no_action_needed"),
])
def test_the_outcome_comes_from_each_parts_result(findings: list[str], actions: list[dict[str, Any]], goal: str,
                                                  outcome: str) -> None:
    assert _decision(findings, actions, goal)["outcome"] == outcome


def test_the_summary_states_each_part_in_a_sentence() -> None:
    decision = _decision(["[part 1/2 done] Scaled payments-api from 4 to 6 replicas.",
                          "[part 2/2 not done] There is no dataset named marketing_leads: it does not exist."],
                         [SCALE], TWO)
    assert "payments-api" in decision["summary"] and "marketing_leads" in decision["summary"]
    assert any("marketing_leads" in r for r in decision["open_risks"])


def test_achieved_needs_a_write_in_the_audit() -> None:
    decision = _decision(["[part 1/1 done] scaled", "[part 1/1 met] ok"], [], "scale payments-api to 6")
    assert decision["outcome"] == "no_action_needed"


def test_a_budget_the_service_is_within_caps_the_scale_up_instead_of_asking_a_cut(run_step: StepRun,
                                                                                  world: World) -> None:
    goal = "keep checkout p95 under 0.3 seconds, and don't spend more than $20 an hour on it"
    finding, calls = run_step(goal, role="optimizer", instruction="Part 1 of 1: meet the target")
    [(name, args)] = writes(calls)
    assert name == "scale_service" and args["service"] == "checkout-api" and args["replicas"] <= 8  # $2.50 each
    after = world.get_service_metrics("checkout-api")
    assert after["p95_ms"] <= 300 and after["hourly_cost"] <= 20


def test_a_second_subject_with_its_own_verb_is_a_second_part_and_touches_only_its_target(run_step: StepRun,
                                                                                          world: World) -> None:
    goal = "the notifications thing needs 2 more replicas and the orders table needs a dedupe"
    first, calls = run_step(goal, role="optimizer", instruction="Part 1 of 2: scale")
    assert writes(calls) == [("scale_service", {"service": "notifications-worker", "replicas": 4})]
    second, calls = run_step(goal, role="optimizer", instruction="Part 2 of 2: dedupe")
    assert [(name, args["dataset"]) for name, args in writes(calls)] == [("clean_dataset", "orders")]


def test_services_picked_by_their_state_and_the_verification_reads_what_was_changed(run_step: StepRun,
                                                                                    world: World) -> None:
    goal = "our cloud bill is too high, trim whatever is idle"
    finding, calls = run_step(goal, role="optimizer", instruction="Part 1 of 1: trim")
    assert [(name, args["service"]) for name, args in writes(calls)] == [("scale_service", "recommendations")]
    # Trimmed, it is no longer idle: the verification reads the service the change named, not today's idle ones.
    findings = [{"step_id": "s1", "agent": "optimizer", "summary": finding["summary"]}]
    verified, _ = run_step(goal, role="analyst", instruction="Part 1 of 1: verify after the change", findings=findings)
    assert verified["summary"].startswith("[part 1/1 met]") and "recommendations" in verified["summary"]


def test_a_ticket_sharing_only_a_common_word_with_the_topic_is_not_picked(run_step: StepRun, world: World) -> None:
    apply_setup(world, [SetupAction(only_open_tickets=["T-1031", "T-1007", "T-1002"])])
    finding, calls = run_step("refund the customer who got the wrong colour and close their ticket",
                              role="optimizer", instruction="Part 1 of 1: refund")
    assert [args["ticket_id"] for _, args in writes(calls)] == ["T-1031"]  # not T-1007, "Wrong size"
