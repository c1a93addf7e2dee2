"""The eval suite: scenario files, scorers, pass^k, reports and a regression gate.

    from agentmesh.evaluation import load_scenarios, run_eval, write_html
    report = run_eval(load_scenarios(["ops", "safety"]), trials=2, concurrency=4)
    print(report["summary"]["mean_reward"], report["summary"]["pass_hat_k"])

Modules: ``scenario`` (the YAML schema and loading), ``matchers`` (argument matchers), ``worlds`` (a copy of
the world per trial), ``scoring`` (components, reward, pass^k / pass@k), ``runner`` (the Prefect flow),
``report`` (JSON, JUnit XML, HTML, compare, the gate), ``judge`` (the optional LLM rubric judge).
"""

from __future__ import annotations

from agentmesh.evaluation.judge import Judge, judge_from_settings
from agentmesh.evaluation.report import compare, gate, write_html, write_junit, write_report
from agentmesh.evaluation.runner import EvalOptions, arun_eval, run_eval
from agentmesh.evaluation.scenario import Scenario, ScenarioError, load_scenario, load_scenarios
from agentmesh.evaluation.scoring import pass_at_k, pass_hat_k, score_trial

__all__ = [
    "EvalOptions",
    "Judge",
    "Scenario",
    "ScenarioError",
    "arun_eval",
    "compare",
    "gate",
    "judge_from_settings",
    "load_scenario",
    "load_scenarios",
    "pass_at_k",
    "pass_hat_k",
    "run_eval",
    "score_trial",
    "write_html",
    "write_junit",
    "write_report",
]
