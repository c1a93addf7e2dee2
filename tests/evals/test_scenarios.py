"""Scenario files: the bundled suites validate; a bad file is one line naming file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agentmesh.evaluation import ScenarioError, load_scenario, load_scenarios
from agentmesh.evaluation.scoring import TrialObservation, score_trial

SUITES = ["ops", "data", "support", "safety"]


def test_bundled_suites_have_at_least_40_scenarios_with_purposes() -> None:
    scenarios = load_scenarios(SUITES)
    assert len(scenarios) >= 40
    assert {s.suite for s in scenarios} == set(SUITES)
    assert all(s.purpose and s.graph == "mesh" for s in scenarios)
    assert sum(1 for s in scenarios if "no-action" in s.tags) >= 5


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_a_wrong_field_is_reported_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, """
        id: bad-one
        purpose: A scenario with a wrong matcher.
        goal: scale it
        evaluation:
          required_calls:
            - tool: scale_service
              args: {replicas: {range: [9, 2]}}
        """)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value).startswith(f"{path}:7: evaluation.required_calls.0.args: ")
    assert "min <= max" in str(err.value)


@pytest.mark.parametrize(("text", "line", "words"), [
    ("id: x-y\npurpose: A purpose long enough.\ngoal: g\nevaluation:\n  outcome: [won]\n", 5, "outcome"),
    ("id: x-y\npurpose: A purpose long enough.\ngoal: g\nevaluation:\n  outcome: [achieved]\nextra: 1\n", 6,
     "extra"),
    ("id: x-y\npurpose: A purpose long enough.\ngoal: [unclosed\n", 4, "invalid YAML"),
    ("id: x-y\npurpose: A purpose long enough.\nevaluation:\n  outcome: [achieved]\n", 1, "goal"),
    ("id: x-y\npurpose: ok\ngoal: g\nevaluation: {outcome: [achieved]}\n", 2, "purpose"),
    ("- a list\n", 1, "mapping"),
])
def test_line_numbers(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value).startswith(f"{path}:{line}:"), str(err.value)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_a_do_nothing_agent_scores_zero_where_the_right_decision_acts(tmp_path: Path) -> None:
    from agentmesh.plugins.operations.evals import WorldFactory, state_view

    factory = WorldFactory(tmp_path, model="offline")
    acting = [s for s in load_scenarios(SUITES) if s.evaluation.reference_actions]
    assert len(acting) >= 20
    for scenario in acting:
        _, world = factory.fresh(scenario, scenario.id)
        untouched = state_view(world)
        idle = {"status": "done", "steps": [], "usage": {},
                "decision": {"summary": "Nothing done.", "rationale": "-", "outcome": "no_action_needed"}}
        obs = TrialObservation(runs=[idle], final_state=untouched, expected_state=factory.expected_state(scenario))
        assert score_trial(scenario, obs).reward == 0.0, scenario.id
