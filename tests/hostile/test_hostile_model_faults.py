"""A model endpoint that misbehaves in every way the OpenAI protocol allows — through the real ``ChatOpenAI`` HTTP
path — and each goal still ends on its own with a recorded, explained status: never a hang, never a crash.

The endpoint answers by the offline rules (so a run that survives its faults reaches a real decision) and breaks on
the requests each case chooses. Transport faults that persist end the run ``failed`` with a one-line reason after
exactly one transport retry; faults that pass are retried away; bad model output is answered, audited and bounded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hostile_faults import Fault, FaultyTeam, assert_audit_complete, assert_ended, output_tool, tool_messages

import agentmesh
from agentmesh.core.settings import Settings
from agentmesh.persistence import audit
from agentmesh.persistence.runs import run_result
from agentmesh.plugins.operations.world import World
from agentmesh.runtime.components import components
from agentmesh.testing import OpenAIServer, Reply, ToolCall, cut, empty, error, huge, slow, tool_call

GOAL = "checkout-api p95 is at 900 ms, keep it under 300 ms without doubling cost"


def always(make: Callable[[], Reply]) -> Fault:
    return lambda n, role, body: make()


def first(count: int, make: Callable[[], Reply]) -> Fault:
    return lambda n, role, body: make() if n <= count else None


def strategist_answers(tool: str, args: dict[str, Any]) -> Fault:
    """The strategist's answer at one stage (plan, decision) is always ``args``, which never validates."""
    return lambda n, role, body: tool_call(tool, args) if role == "strategist" and output_tool(body) == tool else None


# id, fault, settings overrides, expected status, a fragment of the reason (None: no reason expected)
TRANSPORT = [
    ("429-retry-after-persists", always(lambda: error(429, retry_after=0)), {}, "failed", "rate limiting (429)"),
    ("429-retry-after-once", first(1, lambda: error(429, retry_after="0")), {}, "done", None),
    ("500-persists", always(lambda: error(500)), {}, "failed", "kept failing (500)"),
    ("503-persists", always(lambda: error(503)), {}, "failed", "kept failing (503)"),
    ("503-once", first(1, lambda: error(503)), {}, "done", None),
    ("slow-past-timeout-persists", always(lambda: slow(4.0)), {"model_timeout_s": 0.5}, "failed", "did not answer"),
    ("slow-past-timeout-once", first(1, lambda: slow(4.0)), {"model_timeout_s": 0.5}, "done", None),
    ("cut-mid-body-persists", always(cut), {}, "failed", "kept failing"),
    ("cut-mid-body-once", first(1, cut), {}, "done", None),
    ("empty-replies", always(empty), {}, "failed", "never validated"),
    ("enormous-replies", always(lambda: huge(1_000_000)), {}, "budget_exceeded", "token budget"),
    (
        "plan-never-validates",
        strategist_answers("submit_plan", {"steps": "all of them"}),
        {},
        "failed",
        "never validated",
    ),
    (
        "decision-never-validates",
        strategist_answers("submit_decision", {"summary": "", "confidence": 7}),
        {},
        "failed",
        "never validated",
    ),
]


def run_against(endpoint: OpenAIServer, settings: Settings, fault: Fault) -> tuple[dict[str, Any], FaultyTeam]:
    team = FaultyTeam(fault=fault)
    endpoint.responder = team
    result = agentmesh.run_goal(GOAL, settings=settings)
    return result, team


@pytest.mark.parametrize(
    ("fault", "overrides", "status", "reason"), [c[1:] for c in TRANSPORT], ids=[c[0] for c in TRANSPORT]
)
def test_each_model_fault_ends_the_run_with_a_recorded_status(
    endpoint: OpenAIServer,
    hostile_settings: Any,
    fault: Fault,
    overrides: dict[str, Any],
    status: str,
    reason: str | None,
) -> None:
    settings = hostile_settings(**overrides)
    result, team = run_against(endpoint, settings, fault)

    assert_ended(result)
    assert (result["status"], result["error"] if reason else None) == (status, result["error"] if reason else None)
    if reason:
        assert reason in result["error"], result["error"]
    else:
        assert result["error"] is None and result["decision"]["summary"]
    assert team.faults >= 1, "the fault was injected"
    # Recorded, not just returned: the database says the same, and nothing is left running.
    stored = run_result(components(settings).engine, result["run_id"])
    assert stored["status"] == result["status"] and stored["error"] == result["error"]
    assert_audit_complete(components(settings).engine, result)
    # Retries stay bounded: persistent transport faults make model_retries + 1 requests for the one model call.
    if status == "failed" and "every retry" in (result["error"] or ""):
        assert team.requests == settings.model_retries + 1


def _on_first_turn(role: str, bad: Reply) -> Fault:
    """The ``role``'s first model turn in a step is ``bad``; the offline rules answer everything else."""

    def fault(n: int, asking: str | None, body: dict[str, Any]) -> Reply | None:
        if asking == role and not tool_messages(body) and output_tool(body) == "submit_finding":
            return bad
        return None

    return fault


BAD_CALLS = [
    (
        "malformed-json-arguments",
        "analyst",
        ToolCall(name="get_service_metrics", arguments='{"service": "checkout-', id="bad-call"),
        "invalid",
        "not valid JSON",
    ),
    (
        "unknown-tool-name",
        "analyst",
        ToolCall(name="drop_all_tables", arguments={"really": True}, id="bad-call"),
        "refused",
        "no such tool",
    ),
    (
        "tool-of-another-role",
        "analyst",
        ToolCall(name="scale_service", id="bad-call", arguments={"service": "checkout-api", "replicas": 5}),
        "refused",
        "not offered",
    ),
    (
        "wrong-typed-arguments",
        "optimizer",
        ToolCall(name="scale_service", id="bad-call", arguments={"service": "checkout-api", "replicas": "lots"}),
        "invalid",
        "valid integer",
    ),
    (
        "out-of-range-arguments",
        "optimizer",
        ToolCall(name="scale_service", id="bad-call", arguments={"service": "checkout-api", "replicas": 10_000}),
        "refused",
        "replicas",
    ),
]


@pytest.mark.parametrize(
    ("role", "call", "audited", "reason"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_bad_tool_calls_are_audited_answered_and_the_goal_goes_on(
    endpoint: OpenAIServer, hostile_settings: Any, role: str, call: ToolCall, audited: str, reason: str
) -> None:
    settings = hostile_settings()
    world = components(settings).resources.get(World)
    world.ensure_initialised()
    before = next(s for s in world.snapshot()["services"] if s["name"] == "checkout-api")["replicas"]
    result, team = run_against(endpoint, settings, _on_first_turn(role, Reply(tool_calls=[call])))

    assert_ended(result)
    assert result["status"] == "done", result["error"]
    assert team.faults >= 1
    records = {r.tool_call_id: r for r in assert_audit_complete(components(settings).engine, result)}
    bad = records["bad-call"]
    assert (bad.status, bad.agent) == (audited, role)
    assert reason in (bad.reason or ""), bad.reason
    # The model was told, in the reply to its own call id (the endpoint rejects a conversation without it).
    answers = [m for body in endpoint.requests for m in body["messages"] if m.get("tool_call_id") == "bad-call"]
    assert answers and json.loads(answers[0]["content"])["status"] == audited
    if call.name == "scale_service":  # the bad call itself changed nothing; only later valid calls may act
        actions = [a for a in result["decision"]["actions"] if a["tool"] == "scale_service"]
        replicas = world.snapshot()["services"]
        now = next(s for s in replicas if s["name"] == "checkout-api")["replicas"]
        assert now == (actions[-1]["args"]["replicas"] if actions else before)


def test_a_workers_answer_that_never_validates_fails_its_step_not_the_goal(
    endpoint: OpenAIServer, hostile_settings: Any
) -> None:
    def fault(n: int, role: str | None, body: dict[str, Any]) -> Reply | None:
        if role == "analyst":
            return tool_call("submit_finding", {"summary": ["not", "text"], "confidence": "very"})
        return None

    settings = hostile_settings()
    result, team = run_against(endpoint, settings, fault)

    assert_ended(result)
    assert result["status"] == "done", result["error"]
    failed = [f for f in result["findings"] if f["agent"] == "analyst"]
    assert failed and all(f["summary"].startswith("step failed") and "never validated" in f["summary"] for f in failed)
    # Bounded: each analyst step asked at most 1 + max_output_retries times.
    analyst_steps = len(failed)
    assert team.faults == analyst_steps * (settings.max_output_retries + 1)


def test_a_pause_for_approval_is_a_recorded_end(endpoint: OpenAIServer, hostile_settings: Any, home: Path) -> None:
    from agentmesh.gateway.policy import DEFAULT_POLICY_FILE

    home.mkdir(parents=True, exist_ok=True)
    text = DEFAULT_POLICY_FILE.read_text().replace("approval_required = []", 'approval_required = ["scale_service"]')
    (home / "policy.toml").write_text(text)
    settings = hostile_settings()
    result, _ = run_against(endpoint, settings, lambda n, role, body: None)

    assert_ended(result)
    assert result["status"] == "waiting_approval"
    assert [c["tool"] for c in result["pending_approvals"]] == ["scale_service"]
    records = audit.list_calls(components(settings).engine, result["run_id"])
    assert any(r.tool == "scale_service" and r.approval == "pending" for r in records)


def test_tool_arguments_that_are_json_but_not_an_object_fail_the_step_in_one_line(
    endpoint: OpenAIServer, hostile_settings: Any
) -> None:
    # LangChain cannot even build the reply's message, so there is no call to audit: the step fails with a one-line
    # reason (no node retry, no traceback) and the strategist decides without it.
    bad = Reply(tool_calls=[ToolCall(name="scale_service", arguments='["checkout-api", 6]', id="bad-call")])
    settings = hostile_settings()
    world = components(settings).resources.get(World)
    world.ensure_initialised()
    before = world.snapshot()
    result, team = run_against(endpoint, settings, _on_first_turn("optimizer", bad))

    assert_ended(result)
    assert result["status"] == "done", result["error"]
    failed = [f["summary"] for f in result["findings"] if f["agent"] == "optimizer"]
    assert failed and all("could not be read" in s and "\n" not in s for s in failed), failed
    assert team.faults == len(failed), "one model call per failed step: no retry multiplied it"
    assert "bad-call" not in {c["id"] for step in result["steps"] for c in step["tool_calls"]}
    assert world.snapshot()["services"] == before["services"]
