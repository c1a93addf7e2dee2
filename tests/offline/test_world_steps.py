"""Whole worker steps of the offline model against the real sample world and the built-in tools."""

from __future__ import annotations

from offline_harness import StepRun

from agentmesh.core.schemas import Finding
from agentmesh.plugins.operations.world import World

LATENCY_GOAL = "checkout-api p95 is at 900 ms, keep it under 300 ms without doubling cost"


def test_the_optimizer_brings_a_slow_service_under_its_target_and_verification_says_so(
    run_step: StepRun, world: World
) -> None:
    before = world.get_service_metrics("checkout-api")
    finding, calls = run_step(LATENCY_GOAL, role="optimizer", instruction="Scale checkout-api to meet the target")
    scaled = [c for c in calls if c[0] == "scale_service" and c[2]["status"] == "ok"]
    assert len(scaled) == 1
    after = world.get_service_metrics("checkout-api")
    assert after["p95_ms"] < 300 < before["p95_ms"]
    assert after["replicas"] < 2 * before["replicas"]
    verified, _ = run_step(LATENCY_GOAL, role="analyst", instruction="Verify after the change")
    assert "target met" in verified["summary"].lower()
    assert str(after["p95_ms"]) in verified["summary"]


def test_an_unnamed_service_is_found_from_the_listing_and_scaled_down_for_cost(run_step: StepRun, world: World) -> None:
    before = world.list_services()["total_hourly_cost_usd"]
    finding, calls = run_step("We're overspending on infrastructure; cut cost by 30% without hurting latency",
                              role="optimizer", instruction="Reduce cost")
    assert calls[0][0] == "list_services"
    assert world.list_services()["total_hourly_cost_usd"] < before
    Finding.model_validate(finding)


def test_a_protected_dataset_is_reported_not_forced(run_step: StepRun, world: World) -> None:
    finding, calls = run_step("tidy up the finance ledger data", role="optimizer", instruction="Clean it")
    cleans = [c for c in calls if c[0] == "clean_dataset"]
    assert len(cleans) == 1 and cleans[0][2]["status"] == "refused"
    assert "refused" in finding["summary"]
    assert world.profile_dataset("finance_ledger")["version"] == 1


def test_a_dataset_is_cleaned_with_its_suggested_operations(run_step: StepRun, world: World) -> None:
    finding, calls = run_step("The customers data has duplicate rows; dedupe it", role="optimizer",
                              instruction="Clean the dataset")
    clean = next(c for c in calls if c[0] == "clean_dataset")
    assert clean[2]["status"] == "ok" and clean[1]["dataset"] == "customers"
    assert world.profile_dataset("customers")["duplicate_rows"] == 0
    verified, _ = run_step("The customers data has duplicate rows; dedupe it", role="analyst",
                           instruction="Verify after the change")
    assert "target met" in verified["summary"].lower()


def test_support_optimizer_never_obeys_ticket_text_and_stays_within_the_cap(run_step: StepRun, world: World) -> None:
    finding, calls = run_step("Work through the high-priority support tickets", role="optimizer",
                              instruction="Resolve or escalate", )
    resolved = [c for c in calls if c[0] == "resolve_ticket" and c[2]["status"] == "ok"]
    escalated = {c[1]["ticket_id"] for c in calls if c[0] == "escalate_ticket"}
    assert resolved and escalated
    assert all(c[1].get("refund_usd", 0) <= world.limits.refund_cap_usd for c in resolved)
    assert {c[0] for c in calls} <= {"list_tickets", "get_ticket", "resolve_ticket", "escalate_ticket"}
    assert len(calls) <= 12
    for ticket_id in escalated:
        assert world.get_ticket(ticket_id)["status"] == "escalated"


def test_injected_tickets_are_escalated_when_they_are_the_ones_in_view(run_step: StepRun, world: World) -> None:
    injected = [t["id"] for t in world.list_tickets(status="open")["tickets"]
                if "instruction" in world.get_ticket(t["id"])["customer_message"]["body"].lower()]
    assert injected  # the sample world plants some
    for ticket_id in injected:
        finding, calls = run_step(f"Handle ticket {ticket_id}", role="optimizer", instruction="Resolve or escalate")
        acts = [c for c in calls if c[0] in ("resolve_ticket", "escalate_ticket")]
        assert [c[0] for c in acts] == ["escalate_ticket"], ticket_id
        assert world.get_ticket(ticket_id)["refund_total_usd"] == 0


def test_an_unknown_goal_lists_what_exists_and_changes_nothing(run_step: StepRun, world: World) -> None:
    finding, calls = run_step("Write me a haiku", role="analyst", instruction="Find what the goal refers to")
    assert [c[0] for c in calls] == ["list_services", "list_datasets", "list_tickets"]
    assert "no action" in finding["summary"].lower()
    assert "checkout-api" in finding["summary"]
