"""The JSON contract of ``agentmesh run --json`` (issue 2), checked the same way by every test that runs a goal.

Only the documented keys are pinned; extra keys are allowed (the contract is a floor, not a ceiling).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

STATUSES = {"done", "failed", "waiting_approval", "budget_exceeded", "cancelled"}
CALL_STATUSES = {"ok", "refused", "failed", "rejected", "pending_approval"}
WRITE_TOOLS = {"scale_service", "clean_dataset", "resolve_ticket", "escalate_ticket", "notify_operations"}


def _is_iso(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    datetime.fromisoformat(value)
    return True


def assert_run_contract(result: dict[str, Any], *, goal: str | None = None) -> None:
    """Every documented key is present with the documented type."""
    for key in ("run_id", "flow_run_id", "goal", "graph", "status"):
        assert isinstance(result[key], str) and result[key], key
    assert result["prefect_api_url"] is None or result["prefect_api_url"].startswith("http")
    if goal is not None:
        assert result["goal"] == goal.strip()
    assert result["status"] in STATUSES

    model = result["model"]
    assert isinstance(model["name"], str) and model["name"]
    assert isinstance(model["offline"], bool)

    decision = result["decision"]
    if result["status"] == "done":
        assert isinstance(decision, dict)
    if decision is not None:
        assert isinstance(decision["summary"], str) and decision["summary"]
        assert isinstance(decision["rationale"], str) and decision["rationale"]
        assert isinstance(decision["confidence"], int | float) and 0 <= decision["confidence"] <= 1
        assert isinstance(decision["actions"], list)
        for action in decision["actions"]:
            assert isinstance(action["tool"], str) and isinstance(action["args"], dict)

    assert isinstance(result["steps"], list) and result["steps"]
    for step in result["steps"]:
        assert isinstance(step["node"], str) and step["node"]
        assert step["agent"] is None or isinstance(step["agent"], str)
        assert _is_iso(step["started"]), step
        assert step["ended"] is None or _is_iso(step["ended"])
        if step["ended"] is not None:
            assert step["ended"] >= step["started"]
        assert isinstance(step["prefect_task_run_id"], str) and step["prefect_task_run_id"]
        assert isinstance(step["tool_calls"], list)
        for call in step["tool_calls"]:
            assert isinstance(call["id"], str) and call["id"]
            assert isinstance(call["tool"], str) and call["tool"]
            assert isinstance(call["args"], dict)
            assert call["status"] in CALL_STATUSES | {"invalid", "dry_run"}, call["status"]
            assert "result" in call

    usage = result["usage"]
    for key in ("input_tokens", "output_tokens", "model_calls"):
        assert isinstance(usage[key], int) and usage[key] >= 0, key
    assert isinstance(usage["cost_usd"], int | float) and usage["cost_usd"] >= 0
    assert isinstance(result["timings"], dict)


def tool_calls(result: dict[str, Any], *names: str, status: str | None = "ok") -> list[dict[str, Any]]:
    """The run's tool calls to the named tools (all tools when none are named), with a status when given."""
    return [
        call
        for step in result["steps"]
        for call in step["tool_calls"]
        if (not names or call["tool"] in names) and (status is None or call["status"] == status)
    ]


def actions_signature(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The write calls of a run as (tool, sorted JSON args): comparable across runs (ids differ)."""
    import json

    return sorted(
        (call["tool"], json.dumps(call["args"], sort_keys=True))
        for call in tool_calls(result, status=None)
        if call["tool"] in WRITE_TOOLS
    )
