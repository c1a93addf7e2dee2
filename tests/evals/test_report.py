"""Report outputs: JSON shape, JUnit XML, the HTML page, compare and the gate, the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from typer.testing import CliRunner

from agentmesh.evaluation import compare, gate, write_html, write_junit
from agentmesh.evaluation.scenario import Scenario
from agentmesh.evaluation.scoring import TrialObservation, aggregate, score_trial, summarise


def _report(rewards: dict[str, list[bool]]) -> dict:
    scenarios = []
    for sid, results in rewards.items():
        scenario = Scenario.model_validate({"id": f"s-{sid}", "purpose": "a purpose line here", "goal": "fix <b>it</b>",
                                            "evaluation": {"outcome": ["achieved"]}, "suite": "ops"})
        trials, scores = [], []
        for i, ok in enumerate(results):
            run = {"status": "done", "decision": {"summary": "done", "outcome": "achieved" if ok else "not_achieved"},
                   "steps": [{"agent": "optimizer", "tool_calls": [
                       {"tool": "scale_service", "args": {"service": "checkout-api", "replicas": 6}, "status": "ok"}]}],
                   "usage": {"input_tokens": 10, "output_tokens": 2, "model_calls": 1, "cost_usd": 0.0}}
            score = score_trial(scenario, TrialObservation(runs=[run]))
            scores.append(score)
            trials.append({"trial": i + 1, "reward": score.reward, "success": score.success, "outcome": None,
                           "components": {k: {"status": v.status, "reason": v.reason} for k, v in score.components.items()},
                           "failures": score.failures, "error": None, "seconds": 0.1,
                           "usage": run["usage"], "runs": [{"decision": run["decision"], "trajectory": [
                               {"agent": "optimizer", "calls": run["steps"][0]["tool_calls"]}]}]})
        scenarios.append({"id": sid, "suite": "ops", "purpose": scenario.purpose, "goal": scenario.goal,
                          "reward_basis": scenario.evaluation.basis(), **aggregate(scores),
                          "failures": [{"trial": t["trial"], **f} for t in trials for f in t["failures"]],
                          "usage": {"input_tokens": 10, "output_tokens": 2, "model_calls": 1, "cost_usd": 0.0},
                          "seconds": 0.2, "trial_results": trials})
    summary = summarise(scenarios)
    summary.update({"tokens": 12, "model_calls": 2, "cost_usd": 0.0, "seconds": 1.0, "suites": ["ops"]})
    return {"version": 1, "created": "now", "model": "offline", "offline": True, "judge": None, "trials": 2,
            "summary": summary, "scenarios": scenarios}


def test_report_json_shape() -> None:
    report = _report({"a": [True, False], "b": [True, True]})
    a = report["scenarios"][0]
    assert a["reward"] == 0.5 and a["pass_hat_k"] == {"1": 0.5, "2": 0.0} and a["pass_at_k"] == {"1": 0.5, "2": 1.0}
    assert a["failures"][0]["component"] == "outcome" and a["failures"][0]["trial"] == 2
    assert report["summary"]["mean_reward"] == 0.75
    json.dumps(report)


def test_junit_has_one_case_per_trial_and_names_the_failed_component(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(_report({"a": [True, False]}), path)
    root = ET.parse(path).getroot()
    assert root.get("tests") == "2" and root.get("failures") == "1"
    failure = root.find(".//failure")
    assert failure is not None and failure.get("message", "").startswith("outcome:")


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    report = _report({"a": [True, False]})
    write_html(report, path, comparison=compare(_report({"a": [True, True]}), report))
    html = path.read_text()
    assert "fix &lt;b&gt;it&lt;/b&gt;" in html and "<b>it</b>" not in html
    assert "scale_service" in html and "checkout-api" in html and "pass^2" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_compare_and_gate() -> None:
    before = _report({"a": [True, True], "b": [True, True], "gone": [True, True]})
    after = _report({"a": [True, True], "b": [False, False], "new": [True, False]})
    result = compare(before, after)
    changes = {r["id"]: r["change"] for r in result["scenarios"]}
    assert changes == {"a": "same", "b": "regressed", "gone": "removed", "new": "new"}
    assert gate(after, baseline=before)[0] is False
    assert gate(before, baseline=before, fail_under=0.9) == (True, [])
    ok, reasons = gate(after, fail_under=0.99)
    assert not ok and "fail-under" in reasons[0]


def test_cli_compare_validate_and_bad_file_exit_codes(tmp_path: Path) -> None:
    import typer

    from agentmesh.interfaces.cli import eval as eval_cli

    app = typer.Typer()
    eval_cli.register(app)
    runner = CliRunner()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_report({"x": [True, True]})))
    b.write_text(json.dumps(_report({"x": [False, True]})))
    result = runner.invoke(app, ["eval", "compare", str(a), str(b), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["scenarios"][0]["change"] == "regressed"
    result = runner.invoke(app, ["eval", "validate", "ops", "safety"])
    assert result.exit_code == 0 and "scenarios valid" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x-y\npurpose: A purpose long enough.\ngoal: g\nevaluation:\n  outcome: [won]\n")
    result = runner.invoke(app, ["eval", "validate", str(bad)])
    assert result.exit_code != 0 and f"{bad}:5:" in str(result.exception)


def test_cli_record_and_replay_refuse_what_cannot_work(home: Path) -> None:
    import typer

    from agentmesh.core.exceptions import UserError
    from agentmesh.interfaces.cli import eval as eval_cli

    app = typer.Typer()
    eval_cli.register(app)
    runner = CliRunner()
    both = runner.invoke(app, ["eval", "run", "ops", "--record", "--replay"])
    assert isinstance(both.exception, UserError) and "exclude each other" in str(both.exception)
    offline = runner.invoke(app, ["eval", "run", "ops", "--record", "--model", "offline"])
    assert isinstance(offline.exception, UserError) and "offline model sends no HTTP" in str(offline.exception)
