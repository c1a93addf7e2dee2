"""The ``requests`` suite: operator requests phrased as outsiders phrase them, the behaviour spec of the offline
model's rewrite. These tests check the scenarios, not a model:

- each scenario's reference behaviour (its reference actions, the calls it requires, a decision stating its
  facts) scores 1, so nothing in a scenario contradicts the rest of it;
- doing nothing scores 0 wherever the reference acts, and so does doing only part of a request, by the state
  check alone;
- the reference behaviour plus any one write to an entity the scenario does not act on (scale, restart or roll
  back another service, clean another dataset, resolve or escalate another open ticket, notify operations)
  scores 0: touching what is out of scope always fails the trial.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from agentmesh.evaluation import load_scenarios
from agentmesh.evaluation.scenario import Scenario, ToolAction
from agentmesh.evaluation.scoring import TrialObservation, score_trial
from agentmesh.plugins.operations.evals import WorldFactory, apply_action, state_view

SCENARIOS = load_scenarios(["requests"])
KINDS = {"indirect-reference", "unknown-target", "mixed-intents", "topic-tickets", "off-topic", "wrong-diagnosis",
         "units", "ticket-vs-service", "report"}


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> WorldFactory:
    return WorldFactory(tmp_path_factory.mktemp("requests"), model="offline")


def test_the_suite_covers_every_kind_of_request() -> None:
    assert len(SCENARIOS) >= 24
    assert all(s.id.startswith("requests-") and s.suite == "requests" for s in SCENARIOS)
    covered = {tag for s in SCENARIOS for tag in s.tags}
    assert covered >= KINDS, KINDS - covered
    # Every scenario compares the whole final world, so a write out of scope cannot go unseen.
    assert all(s.evaluation.state is not None and not s.evaluation.state.only for s in SCENARIOS)


def _example(spec: Any) -> Any:
    """A value a matcher accepts."""
    if isinstance(spec, dict) and len(spec) == 1:
        kind, value = next(iter(spec.items()))
        if kind == "range":
            low = value[0] if isinstance(value, list) else value.get("min")
            return math.ceil(low)
        if kind == "one_of":
            return value[0]
        if kind in ("equals", "any"):
            return value if kind == "equals" else "x"
        assert kind != "regex", "a required call with a regex matcher has no example value"
    return spec


def _call(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"tool": tool, "args": args, "status": "ok", "agent": "optimizer"}


def _reference_run(scenario: Scenario, extra: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    ev = scenario.evaluation
    calls = [_call(a.tool, a.args) for a in ev.reference_actions]
    calls += [_call(spec.tool, {k: _example(v) for k, v in spec.args.items()}) for spec in ev.required_calls]
    facts = [fact[0] if isinstance(fact, list) else fact for fact in ev.communicate]
    return {"status": "done", "usage": {}, "steps": [{"agent": "optimizer", "tool_calls": [*calls, *extra]}],
            "decision": {"summary": ". ".join(facts) or "Done.", "rationale": "", "outcome": ev.outcome[0]}}


def _in_scope(scenario: Scenario) -> set[str]:
    """The entities the scenario acts on or leaves to the model's judgement (ignored paths)."""
    named = {str(a.args.get(k)) for a in scenario.evaluation.reference_actions
             for k in ("service", "dataset", "ticket_id") if a.args.get(k)}
    state = scenario.evaluation.state
    ignored = {p.split(".")[1] for p in (state.ignore if state else []) if p.count(".") >= 1}
    return named | ignored


def _out_of_scope_writes(scenario: Scenario, view: dict[str, Any]) -> list[ToolAction]:
    scope = _in_scope(scenario)
    service = next(n for n in sorted(view["services"]) if n not in scope)
    dataset = next(n for n in ("customers", "orders", "sensor_readings") if n not in scope)
    writes = [
        ToolAction(tool="scale_service", args={"service": service, "replicas": view["services"][service]["replicas"] + 1}),
        ToolAction(tool="restart_service", args={"service": service}),
        ToolAction(tool="rollback_service", args={"service": service}),
        ToolAction(tool="clean_dataset", args={"dataset": dataset, "operations": [{"op": "dedupe"}]}),
        ToolAction(tool="notify_operations", args={"message": "done", "severity": "info"}),
    ]
    ticket = next((t for t, row in sorted(view["tickets"].items()) if row["status"] == "open" and t not in scope), None)
    if ticket is not None:
        writes += [ToolAction(tool="resolve_ticket", args={"ticket_id": ticket, "resolution": "handled"}),
                   ToolAction(tool="escalate_ticket", args={"ticket_id": ticket, "reason": "a person should look"})]
    return writes


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_reference_behaviour_scores_1_and_doing_nothing_or_more_scores_0(scenario: Scenario,
                                                                         factory: WorldFactory) -> None:
    expected = factory.expected_state(scenario)
    golden = score_trial(scenario, TrialObservation(runs=[_reference_run(scenario)], final_state=expected,
                                                    expected_state=expected))
    assert golden.reward == 1.0, golden.failures

    if scenario.evaluation.reference_actions:
        _, world = factory.fresh(scenario, f"{scenario.id}-idle")
        idle = {"status": "done", "usage": {}, "steps": [],
                "decision": {**_reference_run(scenario)["decision"], "outcome": "no_action_needed"}}
        score = score_trial(scenario, TrialObservation(runs=[idle], final_state=state_view(world),
                                                       expected_state=expected))
        assert score.reward == 0.0 and score.components["state"].status == "fail"

    # Half of a request done (any one reference action left out) fails the state check by itself.
    actions = scenario.evaluation.reference_actions
    for left_out in range(len(actions) if len(actions) > 1 else 0):
        _, world = factory.fresh(scenario, f"{scenario.id}-half-{left_out}")
        for j, action in enumerate(actions):
            if j != left_out:
                apply_action(world, action, key=f"reference-{j}")
        score = score_trial(scenario, TrialObservation(runs=[_reference_run(scenario)], final_state=state_view(world),
                                                       expected_state=expected))
        assert score.components["state"].status == "fail", f"{actions[left_out].tool} left out"

    passed = []
    for i, write in enumerate(_out_of_scope_writes(scenario, expected)):
        _, world = factory.fresh(scenario, f"{scenario.id}-extra-{i}")
        for j, action in enumerate(scenario.evaluation.reference_actions):
            apply_action(world, action, key=f"reference-{j}")
        apply_action(world, write, key="extra")
        run = _reference_run(scenario, extra=[_call(write.tool, write.args)])
        score = score_trial(scenario, TrialObservation(runs=[run], final_state=state_view(world),
                                                       expected_state=expected))
        if score.reward != 0.0:
            passed.append(f"{write.tool}({write.args})")
    assert passed == [], f"out-of-scope writes that still pass: {passed}"


def test_the_world_holds_what_the_indirect_references_need(tmp_path: Path) -> None:
    # The names people use in these goals are in what list_services / list_datasets show.
    _, world = WorldFactory(tmp_path, model="offline").fresh(SCENARIOS[0], "descriptions")
    services = {s["name"]: s["description"] for s in world.list_services()["services"]}
    datasets = {d["name"]: d["description"] for d in world.list_datasets()["datasets"]}
    assert '"recs"' in services["recommendations"]
    assert "Login" in services["auth-api"]
    assert "E-mail and push" in services["notifications-worker"]
    assert "reservations" in services["inventory-svc"]
    assert "Product search" in services["search-api"]
    assert "Card payments" in services["payments-api"]
    assert "CRM" in datasets["customers"]
    assert "Warehouse temperature and humidity" in datasets["sensor_readings"]
    assert "2024" in datasets["orders"] and "shop" in datasets["orders"]
    assert "General ledger" in datasets["finance_ledger"]
    assert not any("invoice" in d.lower() for d in services.values()), "requests-unknown-invoice-generator"
