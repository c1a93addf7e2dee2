"""Eval reports: the JSON record, JUnit XML for CI, a self-contained HTML page, comparison and the gate.

The report JSON::

    {"version": 1, "created", "model", "offline", "judge", "trials",
     "summary": {"scenarios", "trials", "mean_reward", "pass_hat_k": {"1": .., "2": ..}, "pass_at_k": {..},
                 "components": {name: {"pass", "fail", "not_evaluated", "rate"}},
                 "tokens", "input_tokens", "output_tokens", "model_calls", "cost_usd", "seconds", "suites"},
     "scenarios": [{"id", "suite", "purpose", "goal", "reward", "trials", "successes",
                    "pass_hat_k", "pass_at_k", "components", "failures": [{"trial", "component", "reason"}],
                    "usage", "seconds", "trial_results": [{"trial", "run_id", "reward", "success", "components",
                        "failures", "error", "seconds", "usage", "outcome",
                        "decision": {"summary", "rationale", "outcome", "confidence", "open_risks"},
                        "runs": [{"run_id", "goal", "status", "error", "model", "decision", "trajectory"}]}]}]}

A trial's ``decision`` is the one it was scored on (the last turn's) and ``run_id`` that turn's run
(``agentmesh runs show <run_id>``); ``--brief`` leaves ``trial_results`` out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from agentmesh.core.exceptions import UserError

__all__ = ["compare", "gate", "load_report", "render_html", "write_html", "write_junit", "write_report"]

_TEMPLATE = Path(__file__).with_name("report.html.j2")


def write_report(report: dict[str, Any], path: Path, *, brief: bool = False) -> None:
    """Write the report JSON; ``brief`` leaves out each scenario's ``trial_results`` (runs, trajectories)."""
    if brief:
        report = {**report, "scenarios": [{k: v for k, v in s.items() if k != "trial_results"}
                                          for s in report["scenarios"]]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")


def load_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read the report {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"{path} is not a report (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or "scenarios" not in data or "summary" not in data:
        raise UserError(f"{path} is not an eval report (no scenarios and summary)")
    return data


# -- JUnit ------------------------------------------------------------------------------------------------------


def write_junit(report: dict[str, Any], path: Path) -> None:
    """One testsuite per suite, one testcase per trial; a failed trial names its failed components."""
    root = ET.Element("testsuites", name="agentmesh eval", tests="0", failures="0",
                      time=str(report["summary"].get("seconds", 0)))
    suites: dict[str, ET.Element] = {}
    total = failed = 0
    for scenario in report["scenarios"]:
        suite = suites.get(scenario["suite"])
        if suite is None:
            suite = suites[scenario["suite"]] = ET.SubElement(root, "testsuite", name=scenario["suite"], tests="0",
                                                              failures="0")
        for trial in scenario.get("trial_results", []):
            case = ET.SubElement(suite, "testcase", classname=f"{scenario['suite']}.{scenario['id']}",
                                 name=f"{scenario['id']}[trial {trial['trial']}]", time=str(trial.get("seconds", 0)))
            total += 1
            suite.set("tests", str(int(suite.get("tests", "0")) + 1))
            if not trial["success"]:
                failed += 1
                suite.set("failures", str(int(suite.get("failures", "0")) + 1))
                reasons = [f"{f['component']}: {f['reason']}" for f in trial["failures"]]
                node = ET.SubElement(case, "failure", message=(reasons[0] if reasons else "failed")[:500],
                                     type="eval-failure")
                node.text = "\n".join(reasons)
            ET.SubElement(case, "system-out").text = f"purpose: {scenario['purpose']}\ngoal: {scenario['goal']}"
    root.set("tests", str(total))
    root.set("failures", str(failed))
    ET.indent(root)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


# -- comparison and the gate --------------------------------------------------------------------------------------


def compare(before: dict[str, Any], after: dict[str, Any], *, tolerance: float = 0.0) -> dict[str, Any]:
    """Per-scenario reward changes from ``before`` to ``after``: improved, regressed, same, new, removed."""
    old = {s["id"]: s for s in before["scenarios"]}
    new = {s["id"]: s for s in after["scenarios"]}
    rows = []
    for sid in sorted(set(old) | set(new)):
        a, b = old.get(sid), new.get(sid)
        if a is None or b is None:
            rows.append({"id": sid, "before": a and a["reward"], "after": b and b["reward"], "delta": None,
                         "change": "new" if a is None else "removed", "failures": (b or {}).get("failures", [])[:3]})
            continue
        delta = round(b["reward"] - a["reward"], 4)
        change = "improved" if delta > tolerance else "regressed" if delta < -tolerance else "same"
        rows.append({"id": sid, "before": a["reward"], "after": b["reward"], "delta": delta, "change": change,
                     "failures": b.get("failures", [])[:3] if change == "regressed" else []})
    sb, sa = before["summary"], after["summary"]
    return {
        "scenarios": rows,
        "summary": {
            "mean_reward": {"before": sb["mean_reward"], "after": sa["mean_reward"],
                            "delta": round(sa["mean_reward"] - sb["mean_reward"], 4)},
            "pass_hat_k": {"before": sb.get("pass_hat_k"), "after": sa.get("pass_hat_k")},
            "counts": {c: sum(r["change"] == c for r in rows) for c in ("improved", "regressed", "same", "new", "removed")},
        },
    }


def gate(report: dict[str, Any], *, baseline: dict[str, Any] | None = None, fail_under: float | None = None,
         tolerance: float = 0.05) -> tuple[bool, list[str]]:
    """Whether the report passes: mean reward at least ``fail_under`` and no more than ``tolerance`` below the
    baseline's mean reward. Returns (passed, reasons for failing)."""
    reasons = []
    mean = report["summary"]["mean_reward"]
    if fail_under is not None and mean < fail_under - 1e-9:
        reasons.append(f"mean reward {mean:.3f} is under --fail-under {fail_under:.3f}")
    if baseline is not None:
        base = baseline["summary"]["mean_reward"]
        if mean < base - tolerance - 1e-9:
            regressed = [r["id"] for r in compare(baseline, report)["scenarios"] if r["change"] == "regressed"]
            reasons.append(f"mean reward {mean:.3f} fell more than {tolerance:g} below the baseline's {base:.3f}"
                           + (f"; regressed: {', '.join(regressed[:10])}" if regressed else ""))
    return not reasons, reasons


# -- HTML -------------------------------------------------------------------------------------------------------


def _args(value: Any) -> str:
    if not isinstance(value, dict):
        return json.dumps(value, default=str)
    parts = []
    for k, v in value.items():
        text = json.dumps(v, default=str, ensure_ascii=False)
        parts.append(f"{k}={text if len(text) <= 140 else text[:139] + '…'}")
    return ", ".join(parts)


def _when(created: str) -> str:
    """``2026-11-25T12:24:55+00:00`` as ``2026-11-25 12:24 UTC``."""
    try:
        return datetime.fromisoformat(created).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return str(created)


def render_html(report: dict[str, Any], *, comparison: dict[str, Any] | None = None) -> str:
    """The report as one self-contained HTML page (inline CSS, no scripts or network)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["args"] = _args
    env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.0f}%"
    env.filters["when"] = _when
    env.filters["num"] = lambda v: f"{v:,}" if isinstance(v, int) else f"{v:,.3g}" if isinstance(v, float) else str(v)
    template = env.from_string(_TEMPLATE.read_text(encoding="utf-8"))
    deltas = {r["id"]: r for r in (comparison or {}).get("scenarios", [])}
    suites: dict[str, list[dict[str, Any]]] = {}
    for s in report["scenarios"]:
        suites.setdefault(s["suite"], []).append(s)
    return template.render(report=report, summary=report["summary"], suites=suites, deltas=deltas,
                           comparison=comparison)


def write_html(report: dict[str, Any], path: Path, *, comparison: dict[str, Any] | None = None) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(render_html(report, comparison=comparison), encoding="utf-8")
