"""Scorers with hand-computed values: pass^k / pass@k, components, reward basis, "not evaluated"."""

from __future__ import annotations

import pytest

from agentmesh.evaluation.scenario import Scenario
from agentmesh.evaluation.scoring import (
    TrialObservation,
    aggregate,
    compare_state,
    pass_at_k,
    pass_hat_k,
    score_trial,
    summarise,
)


def test_pass_hat_k_and_pass_at_k_by_hand() -> None:
    # c=3 successes of n=4: pass^2 = C(3,2)/C(4,2) = 3/6; pass@2 = 1 - C(1,2)/C(4,2) = 1 - 0/6.
    assert pass_hat_k(4, 3, 2) == 0.5
    assert pass_at_k(4, 3, 2) == 1.0
    assert pass_hat_k(4, 3, 1) == 0.75 == pass_at_k(4, 3, 1)
    assert pass_hat_k(4, 3, 4) == 0.0
    assert pass_at_k(4, 1, 2) == 0.5  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_hat_k(5, 5, 5) == 1.0 and pass_at_k(5, 0, 5) == 0.0
    with pytest.raises(ValueError):
        pass_hat_k(4, 3, 5)


def _scenario(**evaluation) -> Scenario:
    return Scenario.model_validate({"id": "t-1", "purpose": "a scenario for scorer tests", "goal": "do it",
                                    "evaluation": evaluation})


def _run(calls=(), outcome="achieved", summary="Scaled checkout-api to 6 replicas.", status="done") -> dict:
    return {"status": status, "decision": {"summary": summary, "rationale": "", "outcome": outcome},
            "steps": [{"agent": "optimizer", "tool_calls": [
                {"tool": t, "args": a, "status": s, "agent": "optimizer"} for t, a, s in calls]}],
            "usage": {"input_tokens": 100, "output_tokens": 10, "model_calls": 3, "cost_usd": 0.0}}


def test_aggregate_keys_k_as_strings_over_trials() -> None:
    scenario = _scenario(required_calls=[{"tool": "scale_service"}])
    good = score_trial(scenario, TrialObservation(runs=[_run([("scale_service", {}, "ok")])]))
    bad = score_trial(scenario, TrialObservation(runs=[_run([])]))
    agg = aggregate([good, good, good, bad])
    assert agg["reward"] == 0.75 and agg["successes"] == 3
    assert agg["pass_hat_k"] == {"1": 0.75, "2": 0.5, "3": 0.25, "4": 0.0}
    assert agg["pass_at_k"] == {"1": 0.75, "2": 1.0, "3": 1.0, "4": 1.0}
    assert agg["components"]["required_calls"] == {"pass": 3, "fail": 1, "not_evaluated": 0, "rate": 0.75,
                                                   "in_basis": True}
    summary = summarise([{**agg}, {**aggregate([good, good]), "trials": 2}])
    assert summary["pass_hat_k"] == {"1": round((0.75 + 1) / 2, 4), "2": round((0.5 + 1) / 2, 4)}


def test_expected_calls_match_in_any_order_and_each_call_counts_once() -> None:
    calls = [("resolve_ticket", {"ticket_id": "T-1", "refund_usd": 10}, "ok"),
             ("resolve_ticket", {"ticket_id": "T-2", "refund_usd": 20}, "ok")]
    forward = [{"tool": "resolve_ticket", "args": {"ticket_id": "T-1"}},
               {"tool": "resolve_ticket", "args": {"refund_usd": {"range": [5, 30]}}}]
    for specs in (forward, list(reversed(forward))):
        result = score_trial(_scenario(required_calls=specs), TrialObservation(runs=[_run(calls)]))
        assert result.components["required_calls"].status == "pass"
    # Two expectations cannot both be satisfied by one call.
    twice = [{"tool": "resolve_ticket", "args": {"ticket_id": "T-1"}}] * 2
    result = score_trial(_scenario(required_calls=twice), TrialObservation(runs=[_run(calls)]))
    assert result.components["required_calls"].status == "fail"


def test_failure_says_which_component_and_why() -> None:
    scenario = _scenario(required_calls=[{"tool": "scale_service", "args": {"replicas": {"range": [6, 8]}}}],
                         forbidden_calls=[{"tool": "notify_operations"}], outcome=["achieved"])
    obs = TrialObservation(runs=[_run([("scale_service", {"service": "checkout-api", "replicas": 20}, "refused"),
                                       ("notify_operations", {"message": "hi"}, "ok")], outcome="not_achieved")])
    score = score_trial(scenario, obs)
    reasons = {f["component"]: f["reason"] for f in score.failures}
    assert "argument replicas=20" in reasons["required_calls"]
    assert "forbidden call notify_operations" in reasons["forbidden_calls"]
    assert "outcome 'not_achieved'" in reasons["outcome"]
    assert score.reward == 0.0


def test_not_evaluated_is_never_a_pass() -> None:
    # A rubric with no judge configured: not evaluated; in the reward basis it makes the reward 0.
    scenario = _scenario(rubric="is it polite?", outcome=["achieved"], reward_basis=["outcome", "rubric"])
    score = score_trial(scenario, TrialObservation(runs=[_run()]))
    assert score.components["rubric"].status == "not_evaluated"
    assert score.reward == 0.0 and score.failures[0]["component"] == "rubric"
    # As a diagnostic it does not touch the reward, and rates count only evaluated trials.
    diag = score_trial(_scenario(rubric="is it polite?", outcome=["achieved"]), TrialObservation(runs=[_run()]))
    assert diag.reward == 1.0
    assert aggregate([diag])["components"]["rubric"]["rate"] is None
    # An assertion on a path that does not exist has nothing to check.
    missing = _scenario(assertions=[{"path": "services.nope.replicas", "op": "<=", "value": 3}])
    result = score_trial(missing, TrialObservation(runs=[_run()], final_state={"services": {}}))
    assert result.components["assertions"].status == "not_evaluated" and result.reward == 0.0
    # A crash leaves every check not evaluated and the reward 0.
    crash = score_trial(_scenario(outcome=["achieved"]), TrialObservation(error="RuntimeError: boom"))
    assert crash.components["outcome"].status == "not_evaluated" and crash.reward == 0.0


def test_evaluation_must_check_something() -> None:
    with pytest.raises(ValueError, match="checks nothing"):
        _scenario()
    with pytest.raises(ValueError, match="does not configure"):
        _scenario(outcome=["achieved"], reward_basis=["state"])


def test_state_comparison_uses_tolerance_and_ignore_not_a_hash() -> None:
    want = {"services": {"a": {"replicas": 6, "p95_ms": 200}}, "tickets": {"T-1": {"status": "resolved",
                                                                                     "priority": "high"}}}
    got = {"services": {"a": {"replicas": 7, "p95_ms": 180}}, "tickets": {"T-1": {"status": "open",
                                                                                   "priority": "low"}}}
    assert compare_state(want, got) == ["services.a.replicas: expected 6, got 7",
                                        "tickets.T-1.status: expected 'resolved', got 'open'"]
    assert compare_state(want, got, tolerance={"services.*.replicas": 1}, ignore=["tickets.*.status"]) == []


def test_communicate_matches_bfcl_normalised_and_alternatives() -> None:
    scenario = _scenario(communicate=["Checkout API", ["six replicas", "6 replicas"]])
    assert score_trial(scenario, TrialObservation(runs=[_run()])).reward == 1.0
    failing = score_trial(_scenario(communicate=["payments-api"]), TrialObservation(runs=[_run()]))
    assert "does not state: payments-api" in failing.failures[0]["reason"]
