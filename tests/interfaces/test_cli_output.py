"""Output for people at 80 columns: the decision panel says each thing once, and tables cut only free text."""

from __future__ import annotations

import io

from rich.console import Console

from agentmesh.interfaces.cli._render import audit_table, print_result, runs_table, steps_table

GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost, and tell finance"


def _render(thing: object, width: int = 80) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True, highlight=False).print(thing)
    return buffer.getvalue().splitlines()


def test_decision_panel_summary_actions_one_line_each_risks_once_outcome() -> None:
    result = {
        "status": "done", "run_id": "8f1c2d3e-0000-4000-8000-000000000001", "usage": {},
        "model": {"name": "offline", "offline": True},
        "decision": {"summary": "Scaled checkout-api from 4 to 6 replicas.", "rationale": "p95 was 900 ms " * 20,
                     "actions": [{"tool": "scale_service", "args": {"service": "checkout-api", "replicas": 6}},
                                 {"tool": "notify_operations", "args": {"message": "scaled " * 40, "severity": "info"}}],
                     "open_risks": ["cost rises 50%", "cost rises 50%", "traffic may grow"],
                     "outcome": "achieved", "confidence": 0.8},
    }
    buffer = io.StringIO()
    print_result(Console(file=buffer, width=80, no_color=True), result)
    text = buffer.getvalue()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "{" not in text and '"service"' not in text, "actions are shown as key=value, not JSON"
    assert [line for line in lines if "scale_service service=checkout-api replicas=6" in line]
    notify = [line for line in lines if "notify_operations" in line]
    assert len(notify) == 1 and notify[0].rstrip(" │").endswith("…"), "a long action is cut to one line"
    assert text.count("cost rises 50%") == 1 and text.count("traffic may grow") == 1
    assert "outcome achieved" in text
    assert "p95 was 900 ms" not in text, "the rationale is `runs show`'s, not repeated in the panel"


def test_runs_table_fits_80_columns_and_cuts_only_the_goal() -> None:
    ids = ["8f1c2d3e-5b6a-4c1d-9e2f-3a4b5c6d7e8f", "8f1c2d3e-77aa-4c1d-9e2f-3a4b5c6d7e8f"]  # 8 characters alike
    rows = [{"run_id": run_id, "status": status, "graph": graph,
             "deployment": None, "created": "2026-12-05T08:19:42.123456", "goal": GOAL}
            for run_id, (status, graph) in zip(ids, [("done", "mesh"), ("waiting_approval", "infra_management")],
                                               strict=True)]
    lines = _render(runs_table(rows, 80))
    assert all(len(line) <= 80 for line in lines), lines
    assert len(lines) == 3, "one line per run"
    for row, line in zip(rows, lines[1:], strict=True):
        prefix = line.split()[0]
        assert row["run_id"].startswith(prefix) and len(prefix) >= 8
        assert row["status"] in line and row["graph"] in line and "12-05 08:19" in line
        assert line.rstrip().endswith("…")
    assert lines[1].split()[0] != lines[2].split()[0], "prefixes long enough to tell the runs apart"


def test_audit_table_keeps_tools_and_statuses_whole_at_80_columns() -> None:
    calls = [{"tool_call_id": "call-0123456789abcdef", "agent": "optimizer", "tool": "get_service_metrics",
              "status": "refused", "args": {"service": "payments-api"},
              "reason": "service payments-api is outside the goal's scope (scope: service checkout-api)"}]
    lines = _render(audit_table(calls, 80))
    assert all(len(line) <= 80 for line in lines)
    assert "get_service_metrics" in lines[1] and "refused" in lines[1] and "optimizer" in lines[1]
    assert "outside the goal's scope" in " ".join(" ".join(lines).split())


def test_steps_table_keeps_task_run_and_span_ids_whole_at_80_columns() -> None:
    steps = [{"node": node, "agent": agent, "status": status, "tool_calls": [{}] * calls,
              "prefect_task_run_id": f"01a24624-5804-73eb-b3cd-af0dbd6e37{i:02d}", "span_id": f"{i:016x}",
              "worker": f"ip-10-0-3-17.ec2.internal:{41000 + i}"}
             for i, (node, agent, status, calls) in enumerate([("plan", "strategist", "done", 0),
                                                                ("dispatch", None, "done", 0),
                                                                ("optimizer", "optimizer", "waiting_approval", 5)])]
    lines = _render(steps_table(steps, 80))
    assert all(len(line) <= 80 for line in lines), lines
    text = "\n".join(lines)
    for step in steps:
        assert step["prefect_task_run_id"] in text, "an id is never split across lines"
        assert f"span {step['span_id']}" in text
        assert f"on {step['worker']}" in text, "where the step ran, whole"
    assert "waiting_approval" in text and " - " in text  # a node without an agent
