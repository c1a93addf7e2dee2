"""The CI gate: every bundled suite with the offline model, 2 trials, against the committed baseline.

The same check as ``agentmesh eval run ops data support safety self_healing data_pipeline customer_service
infra_management collaboration learning --trials 2 --baseline evals/baseline.json --fail-under 0.9`` (every
bundled suite); it runs in-process so ``make test`` is the whole of CI. The baseline is regenerated as
``evals/README.md`` says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.core.bundled import bundled
from agentmesh.core.settings import Settings
from agentmesh.evaluation import EvalOptions, arun_eval, gate, load_scenarios
from agentmesh.evaluation.report import compare, load_report

FAIL_UNDER = 0.9
# Suites that specify behaviour the offline model does not have yet (none today: `requests`, the spec of the offline
# model's rewrite, passes and is gated like the rest).
NOT_GATED: set[str] = set()


@pytest.mark.slow
async def test_every_suite_passes_the_gate_against_the_committed_baseline(tmp_path: Path) -> None:
    suites = sorted(p.name for p in bundled("evals").iterdir()
                    if p.is_dir() and any(p.glob("*.yaml")) and p.name not in NOT_GATED)
    scenarios = load_scenarios(suites)
    options = EvalOptions(trials=2, concurrency=4, settings=Settings(home=tmp_path / "home", model="offline"))
    report = await arun_eval(scenarios, options)
    baseline = load_report(bundled("evals") / "baseline.json")
    passed, reasons = gate(report, baseline=baseline, fail_under=FAIL_UNDER)
    regressed = [r for r in compare(baseline, report)["scenarios"] if r["change"] in ("regressed", "removed")]
    assert passed, reasons
    assert not regressed, regressed
    assert report["summary"]["trials"] == 2 * len(scenarios)
    assert set(report["summary"]["pass_hat_k"]) == {"1", "2"}
    # The report's keys, as issue 6 names them.
    for entry in report["scenarios"]:
        assert {"id", "reward", "trials", "components", "pass_hat_k", "pass_at_k", "failures"} <= set(entry)
        assert entry["trials"] == 2 and set(entry["pass_at_k"]) == {"1", "2"}
    assert {"mean_reward", "pass_hat_k", "pass_at_k", "components", "tokens", "cost_usd", "seconds"} <= set(
        report["summary"])
    assert all("rate" in c for c in report["summary"]["components"].values())
