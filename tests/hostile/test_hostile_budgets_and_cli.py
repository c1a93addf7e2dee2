"""Budgets per goal hold whatever the model does, and keep what was done; the CLI ends every hostile run with its
status and exit code — no traceback on stderr — and its audit lists every tool call the run's JSON shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hostile_faults import (
    FaultyTeam,
    assert_audit_complete,
    assert_ended,
    call_ids,
    output_tool,
    tool_messages,
)

import agentmesh
from agentmesh.core.settings import ModelPrice, Settings
from agentmesh.runtime.components import components
from agentmesh.testing import OpenAIServer, Reply, ToolCall, error, huge
from agentmesh.testing.offline_responder import offline_responder

GOAL = "checkout-api p95 is at 900 ms, keep it under 300 ms without doubling cost"
AGENTMESH = [sys.executable, "-m", "agentmesh"]


def test_the_default_model_call_budget_is_60(home: Path) -> None:
    assert Settings(model="offline").max_model_calls == 60
    assert Settings.model_fields["max_model_calls"].default == 60


def _priced(body: dict[str, Any]) -> Reply:
    reply = offline_responder(body)
    reply.prompt_tokens, reply.completion_tokens = 2_000, 100
    return reply


BUDGETS = [
    ("model_calls", {"max_model_calls": 4}, 0.0, "model-call budget of 4"),
    ("tokens", {"max_tokens": 9_000}, 0.0, "token budget of 9000"),
    ("cost", {"max_cost_usd": 0.009, "prices": {"gpt-4o-mini": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)}},
     0.0, "cost budget of $0.01"),
    ("wall_time", {"max_seconds": 3.0}, 0.25, "wall-time budget"),
]


@pytest.mark.parametrize(("overrides", "latency", "reason"), [b[1:] for b in BUDGETS], ids=[b[0] for b in BUDGETS])
def test_each_budget_ends_the_goal_budget_exceeded_with_partial_results(home: Path, overrides: dict[str, Any],
                                                                         latency: float, reason: str) -> None:
    with OpenAIServer(responder=_priced, latency_s=latency) as server:
        settings = Settings(model="gpt-4o-mini", openai_api_key="sk-test", openai_base_url=server.base_url,
                            model_retries=0, node_retries=0, **overrides)
        result = agentmesh.run_goal(GOAL, settings=settings)
        requests = len(server.requests)

    assert_ended(result)
    assert result["status"] == "budget_exceeded", (result["status"], result["error"])
    assert reason in result["error"]
    # Partial results are kept: the plan, the steps run so far with their tool calls, the findings, the usage.
    assert result["plan"] and result["plan"]["steps"], "the plan made before the budget ran out is kept"
    assert len(result["steps"]) >= 2
    # A sibling step cancelled with its request in flight is not journalled: never more calls counted than made.
    # (A wall-time budget may run out right after the plan on a loaded machine: one call is then all there is.)
    assert (1 if "max_seconds" in overrides else 2) <= result["usage"]["model_calls"] <= requests
    assert_audit_complete(components(settings).engine, result)
    usage = result["usage"]
    # Model calls never pass their budget, even from parallel workers (a call cancelled in flight is not journalled).
    if "max_model_calls" in overrides:
        assert overrides["max_model_calls"] - 3 <= usage["model_calls"] <= overrides["max_model_calls"]
    # Tokens and cost are known only after a call: at most the calls in flight at once (3 workers) pass the line.
    if "max_tokens" in overrides:
        assert usage["input_tokens"] + usage["output_tokens"] - 3 * 2_100 < overrides["max_tokens"]
    if "max_cost_usd" in overrides:
        assert usage["cost_usd"] - 3 * (2_000 * 1.0 + 100 * 2.0) / 1e6 < overrides["max_cost_usd"]


def test_a_budget_spent_partly_by_workers_keeps_their_findings_and_calls(home: Path) -> None:
    with OpenAIServer(responder=_priced) as server:
        settings = Settings(model="gpt-4o-mini", openai_api_key="sk-test", openai_base_url=server.base_url,
                            model_retries=0, node_retries=0, max_model_calls=9)
        result = agentmesh.run_goal(GOAL, settings=settings)

    assert result["status"] == "budget_exceeded", result["error"]
    assert result["findings"], "findings of the steps that finished are in the run JSON"
    assert call_ids(result), "the tool calls made before the budget ran out are in the run JSON"


# -- the CLI -------------------------------------------------------------------------------------------------


def _cli(home: Path, server: OpenAIServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, AGENTMESH_HOME=str(home), AGENTMESH_MODEL="gpt-4o-mini", OPENAI_API_KEY="sk-test-cli",
                OPENAI_BASE_URL=server.base_url, AGENTMESH_MODEL_RETRIES="1", AGENTMESH_MODEL_TIMEOUT_S="1",
                AGENTMESH_NODE_RETRIES="0", **env)
    return subprocess.run([*AGENTMESH, *args], env=full, capture_output=True, text=True, timeout=300)


def _malformed_then_unknown(n: int, role: str | None, body: dict[str, Any]) -> Reply | None:
    if role == "analyst" and output_tool(body) == "submit_finding" and len(tool_messages(body)) < 2:
        if not tool_messages(body):
            return Reply(tool_calls=[ToolCall(name="get_service_metrics", arguments="{not json", id="cli-bad-1")])
        return Reply(tool_calls=[ToolCall(name="format_disk", arguments={}, id="cli-bad-2")])
    return None


CLI_CASES = [
    ("429-persists", lambda n, r, b: error(429, retry_after=0), {}, 1, "failed"),
    ("enormous-replies", lambda n, r, b: huge(1_000_000), {}, 1, "budget_exceeded"),
    ("model-call-budget", lambda n, r, b: None, {"AGENTMESH_MAX_MODEL_CALLS": "3"}, 1, "budget_exceeded"),
    ("malformed-and-unknown-tools", _malformed_then_unknown, {}, 0, "done"),
]


@pytest.mark.parametrize(("fault", "env", "code", "status"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_the_cli_ends_hostile_runs_with_a_status_and_no_traceback(home: Path, fault: Any, env: dict[str, str],
                                                                  code: int, status: str) -> None:
    team = FaultyTeam(fault=fault)
    with OpenAIServer(responder=team) as server:
        done = _cli(home, server, "run", "--json", GOAL, **env)
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        assert done.returncode == code, done.stderr[-3000:]
        result = json.loads(done.stdout)
        assert_ended(result)
        assert result["status"] == status
        # Every tool call of the run's JSON is in `agentmesh runs audit --json`, with a final status.
        audited = _cli(home, server, "runs", "audit", result["run_id"], "--json")
    assert audited.returncode == 0 and "Traceback" not in audited.stderr
    records = {r["tool_call_id"]: r for r in json.loads(audited.stdout)}
    assert set(call_ids(result)) == set(records)
    final = {"ok", "refused", "invalid", "failed", "rejected", "dry_run"}
    assert all(r["status"] in final for r in records.values()), [(r["tool"], r["status"]) for r in records.values()]
    if status == "done" and team.faults:
        assert (records["cli-bad-1"]["status"], records["cli-bad-2"]["status"]) == ("invalid", "refused")
