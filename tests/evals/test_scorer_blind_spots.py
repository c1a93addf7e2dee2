"""Three ways the scorer passed what it should not, one test each (each fails on the scorer before the fix):

- ``communicate`` passed when the decision only listed every known name ("known: customers, finance_ledger, …");
- the state check did not see a restart or a rollback, so a write to the wrong service could pass it;
- the report JSON left out the decision's rationale (which ``communicate`` reads) and each trial's run id.
"""

from __future__ import annotations

from pathlib import Path

from agentmesh.core.settings import Settings
from agentmesh.evaluation.runner import EvalOptions, _TrialResult, build_report
from agentmesh.evaluation.scenario import Scenario, ToolAction
from agentmesh.evaluation.scoring import TrialObservation, compare_state, score_trial
from agentmesh.plugins.operations.evals import WorldFactory, apply_action, state_view

DATASETS = {"customers": {"versions": 1}, "finance_ledger": {"versions": 1}, "orders": {"versions": 1},
            "sensor_readings": {"versions": 1}}


def _scenario(**evaluation: object) -> Scenario:
    return Scenario.model_validate({"id": "blind-spot", "purpose": "a scenario for scorer tests",
                                    "goal": "dedupe the CRM export", "evaluation": evaluation})


def _run(summary: str, rationale: str = "", outcome: str = "not_achieved") -> dict:
    return {"run_id": "run-42", "status": "done", "steps": [], "usage": {},
            "decision": {"summary": summary, "rationale": rationale, "outcome": outcome, "confidence": 0.5,
                         "open_risks": []}}


def test_communicate_does_not_count_a_name_that_is_only_in_a_list_of_every_known_name() -> None:
    scenario = _scenario(communicate=["customers"])
    state = {"datasets": DATASETS}
    catalogue = _run("No dataset 'crm_export'.", "Known datasets: customers, finance_ledger, orders, sensor_readings.")
    score = score_trial(scenario, TrialObservation(runs=[catalogue], final_state=state))
    assert score.components["communicate"].status == "fail"
    assert "customers (only in a list of every known name)" in score.components["communicate"].reason
    # The same list, next to a statement about the dataset, passes; so does a list of only some names.
    stated = _run("Cleaned customers (the CRM export) into version 2.",
                  "Known datasets: customers, finance_ledger, orders, sensor_readings.", outcome="achieved")
    assert score_trial(scenario, TrialObservation(runs=[stated], final_state=state)).components[
        "communicate"].status == "pass"
    some = _run("Cleaned customers, orders and sensor_readings.")
    assert score_trial(scenario, TrialObservation(runs=[some], final_state=state)).components[
        "communicate"].status == "pass"


def test_the_state_check_sees_every_write_a_built_in_tool_makes(tmp_path: Path) -> None:
    # Every write tool, on a service, ticket or dataset no reference action touches: the state check must fail.
    writes = [
        ToolAction(tool="scale_service", args={"service": "auth-api", "replicas": 4}),
        ToolAction(tool="restart_service", args={"service": "auth-api"}),  # no fault: only the restart shows
        ToolAction(tool="rollback_service", args={"service": "payments-api"}),  # same metrics, older release
        ToolAction(tool="clean_dataset", args={"dataset": "customers", "operations": [{"op": "dedupe"}]}),
        ToolAction(tool="resolve_ticket", args={"ticket_id": "T-1005", "resolution": "answered"}),
        ToolAction(tool="escalate_ticket", args={"ticket_id": "T-1005", "reason": "a person should look"}),
        ToolAction(tool="notify_operations", args={"message": "hello", "severity": "info"}),
    ]
    scenario = _scenario(state={})  # no reference actions: the world must not change
    factory = WorldFactory(tmp_path, model="offline")
    expected = factory.expected_state(scenario)
    unseen = []
    for i, action in enumerate(writes):
        _, world = factory.fresh(scenario, f"write-{i}")
        apply_action(world, action, key=f"agent-{i}")
        final = state_view(world)
        obs = TrialObservation(runs=[_run("done")], final_state=final, expected_state=expected)
        if not compare_state(expected, final) or score_trial(scenario, obs).components["state"].status != "fail":
            unseen.append(action.tool)
    assert unseen == []
    # A restart that clears a fault, and a rollback, show as what they changed.
    _, world = factory.fresh(scenario, "leak")
    world.rollback_service("search-api", key="k1")
    world.restart_service("auth-api", key="k2")
    view = state_view(world)["services"]
    assert view["search-api"]["deployed_version"] == "v5.1.4" and expected["services"]["search-api"][
        "deployed_version"] == "v5.2.0-rc1"
    assert view["auth-api"]["restarts"] == 1 and expected["services"]["auth-api"]["restarts"] == 0
    # What a model words its own way (a resolution) is in the view for assertions, never compared.
    _, one = factory.fresh(scenario, "words-1")
    _, other = factory.fresh(scenario, "words-2")
    one.resolve_ticket("T-1005", "Here is how to download invoices.", key="a")
    other.resolve_ticket("T-1005", "Invoices are under Account > Orders.", key="b")
    assert state_view(one)["tickets"]["T-1005"]["resolution"] != state_view(other)["tickets"]["T-1005"]["resolution"]
    assert compare_state(state_view(one), state_view(other)) == []
    assert compare_state(state_view(one), state_view(other), only=["tickets.T-1005"]) == []


def test_each_trial_in_the_report_carries_its_decision_and_run_id(tmp_path: Path) -> None:
    scenario = _scenario(outcome=["achieved"])
    run = _run("Cleaned customers.", "The CRM export is the customers dataset (its description says so).",
               outcome="achieved")
    obs = TrialObservation(runs=[run])
    result = _TrialResult(scenario=scenario, index=0, observation=obs, score=score_trial(scenario, obs))
    report = build_report([scenario], [result], settings=Settings(home=tmp_path, model="offline"),
                          options=EvalOptions(), seconds=1.0)
    trial = report["scenarios"][0]["trial_results"][0]
    assert trial["run_id"] == "run-42"
    assert trial["decision"]["summary"] == "Cleaned customers."
    assert trial["decision"]["rationale"] == run["decision"]["rationale"]
    assert trial["decision"]["outcome"] == "achieved"
    assert trial["runs"][0]["decision"]["rationale"] == run["decision"]["rationale"]
