"""A whole goal over the real OpenAI protocol: a local server plays each agent sensibly, a VCR cassette records the
conversation, and the goal replays from the cassette with the server stopped and a fresh home.

The plan is sequential (s2 depends on s1), so the model requests come in one order and the cassette — which
matches requests on method and path only — replays them in that order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from run_contract import actions_signature, assert_run_contract, tool_calls

from agentmesh import Settings, arun_goal
from agentmesh.testing import OpenAIServer, Reply, tool_call

CASSETTES = Path(__file__).parent / "cassettes"
GOAL = "checkout-api p95 is around 900 ms; get it under 300 ms without doubling the cost"
KEY = "sk-test-secret"
CASSETTE = "whole_goal_scale_checkout"
PROMPT_TOKENS, COMPLETION_TOKENS = 1200, 80
"""Usage every reply reports, so the expected totals and cost are exact."""
SUMMARY = "Scaled checkout-api from 4 to 6 replicas; p95 is now under 300 ms at 1.5x the cost."
EXPECTED_CALLS = [
    ("get_service_metrics", {"service": "checkout-api"}),
    ("scale_service", {"service": "checkout-api", "replicas": 6}),
]
MODEL_REQUESTS = 7
"""plan, analyst (2 turns), optimizer (2 turns), review, decide."""


def _role(body: dict[str, Any]) -> str:
    system = next(m["content"] for m in body["messages"] if m["role"] == "system")
    return system.split("You are the **", 1)[1].split("**", 1)[0]


def _tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]


def _answer(name: str, args: dict[str, Any], call_id: str) -> Reply:
    return tool_call(name, args, id=call_id, prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS)


def play_the_team(body: dict[str, Any]) -> Reply:
    """Each agent, played from what the request offers and what the conversation holds so far."""
    role = _role(body)
    offered = {t["function"]["name"] for t in body.get("tools", [])}
    results = _tool_results(body)
    if "submit_plan" in offered:
        return _answer("submit_plan", {
            "objective": "checkout-api p95 under 300 ms at less than twice today's hourly cost",
            "steps": [
                {"id": "s1", "role": "analyst", "instruction": "Read checkout-api's current metrics."},
                {"id": "s2", "role": "optimizer", "instruction": "Scale checkout-api to bring p95 under 300 ms.",
                 "depends_on": ["s1"]},
            ],
        }, "call_plan")
    if "submit_review" in offered:
        return _answer("submit_review", {"verdict": "decide", "reason": "checkout-api was scaled; p95 is met"},
                       "call_review")
    if "submit_decision" in offered:
        return _answer("submit_decision", {
            "summary": SUMMARY, "rationale": "The analyst read p95 near 900 ms at 4 replicas; 6 replicas bring it "
            "under 300 ms.", "confidence": 0.8, "outcome": "achieved", "open_risks": ["traffic may grow further"],
        }, "call_decision")
    if role == "analyst" and not results:
        return _answer("get_service_metrics", {"service": "checkout-api"}, "call_metrics")
    if role == "optimizer" and not results:
        return _answer("scale_service", {"service": "checkout-api", "replicas": 6}, "call_scale")
    last = results[-1]
    return _answer("submit_finding", {
        "summary": f"{role}: {last['status']}", "observations": [json.dumps(last.get("result"))[:500]],
        "confidence": 0.9,
    }, f"call_finding_{role}")


def _settings(home: Path, base_url: str) -> Settings:
    return Settings(home=home, model="gpt-4o-mini", openai_api_key=KEY, openai_base_url=base_url)


def _assert_goal(result: dict[str, Any]) -> None:
    assert_run_contract(result, goal=GOAL)
    assert result["status"] == "done", result["error"]
    assert result["model"] == {"name": "gpt-4o-mini", "offline": False}
    assert result["decision"]["summary"] == SUMMARY
    assert [(c["tool"], c["args"]) for c in tool_calls(result)] == EXPECTED_CALLS
    assert [a["tool"] for a in result["decision"]["actions"]] == ["scale_service"]
    usage = result["usage"]
    assert usage["model_calls"] == MODEL_REQUESTS
    assert usage["input_tokens"] == MODEL_REQUESTS * PROMPT_TOKENS
    assert usage["output_tokens"] == MODEL_REQUESTS * COMPLETION_TOKENS
    price = Settings().price("gpt-4o-mini")
    assert price is not None
    expected = (usage["input_tokens"] * price.input_per_mtok + usage["output_tokens"] * price.output_per_mtok) / 1e6
    assert usage["cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert usage["cost_usd"] > 0


def _assert_clean(cassette: Path) -> None:
    text = cassette.read_text()
    assert "chat/completions" in text
    assert KEY not in text and "sk-" not in text.lower()
    assert "authorization" not in text.lower() and "bearer" not in text.lower()
    assert "/api/flow_runs" not in text and "/api/task_runs" not in text, "Prefect traffic is not the model's"


async def test_record_a_whole_goal_then_replay_it_with_the_server_stopped(
    home: Path, tmp_path: Path, vcr_cassette: Any
) -> None:
    with OpenAIServer(responder=play_the_team) as server:
        base_url = server.base_url
        with vcr_cassette(CASSETTE, directory=tmp_path, mode="all"):
            live = await arun_goal(GOAL, settings=_settings(tmp_path / "live", base_url))
    _assert_goal(live)
    assert len(server.requests) == MODEL_REQUESTS
    plan_request = server.requests[0]
    assert plan_request["tool_choice"]["function"]["name"] == "submit_plan"
    analyst_first = next(r for r in server.requests if _role(r) == "analyst")
    offered = {t["function"]["name"] for t in analyst_first["tools"]}
    assert "get_service_metrics" in offered and "scale_service" not in offered  # read-only role
    _assert_clean(tmp_path / f"{CASSETTE}.yaml")

    with vcr_cassette(CASSETTE, directory=tmp_path, mode="none"):
        replayed = await arun_goal(GOAL, settings=_settings(tmp_path / "replay", base_url))
    _assert_goal(replayed)
    assert len(server.requests) == MODEL_REQUESTS  # nothing reached the (stopped) server
    assert replayed["run_id"] != live["run_id"]
    assert replayed["decision"]["summary"] == live["decision"]["summary"]
    assert actions_signature(replayed) == actions_signature(live)
    assert replayed["usage"] == live["usage"]


async def test_committed_goal_cassette_replays_with_no_server(home: Path, tmp_path: Path, vcr_cassette: Any,
                                                              recording: bool) -> None:
    """``tests/models/cassettes/whole_goal_scale_checkout.yaml``; recorded from the local server when it is
    missing (or with AGENTMESH_RECORD=1 after deleting it)."""
    path = CASSETTES / f"{CASSETTE}.yaml"
    if recording or not path.exists():
        with OpenAIServer(responder=play_the_team) as server, vcr_cassette(CASSETTE, mode="once"):
            recorded = await arun_goal(GOAL, settings=_settings(tmp_path / "record", server.base_url))
        _assert_goal(recorded)
    _assert_clean(path)
    with vcr_cassette(CASSETTE, mode="none"):
        replayed = await arun_goal(GOAL, settings=_settings(tmp_path / "replay", "http://127.0.0.1:9/v1"))
    _assert_goal(replayed)
