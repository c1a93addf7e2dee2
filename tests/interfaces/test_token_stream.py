"""Tokens reach HTTP clients while the model is still writing: a real ``agentmesh serve`` whose model is a local
OpenAI-protocol server streaming the decision slowly; the SSE client gets ``token`` events and the official
``openai`` client gets the decision's text as deltas, each before the server has finished writing that reply."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import openai
import pytest
from serve_harness import Server, iter_sse, running_server

from agentmesh.testing import OpenAIServer, Reply
from agentmesh.testing.offline_responder import offline_responder

pytestmark = pytest.mark.slow

GOAL = "What is the p95 latency of payments-api right now?"
DELAY_S = 0.1
"""Between two chunks of the decision's reply (~60 chunks): the window in which a token must arrive."""


def _forced(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    return choice["function"]["name"] if isinstance(choice, dict) else None


def _respond(body: dict[str, Any]) -> Reply:
    reply = offline_responder(body)
    return replace(reply, token_delay_s=DELAY_S) if _forced(body) == "submit_decision" else reply


@pytest.fixture(scope="module")
def model() -> Iterator[OpenAIServer]:
    with OpenAIServer(responder=_respond) as server:
        yield server


@pytest.fixture(scope="module")
def serving(model: OpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"AGENTMESH_MODEL": "gpt-4o-mini", "OPENAI_API_KEY": "sk-test-tokens", "OPENAI_BASE_URL": model.base_url}
    with running_server(tmp_path_factory.mktemp("tokens"), env=env) as found:
        yield found


def _decision_request(model: OpenAIServer, after: int) -> int:
    [index] = [i for i, body in enumerate(model.requests) if i >= after and _forced(body) == "submit_decision"]
    return index


def test_the_sse_client_gets_tokens_before_the_reply_ends(serving: Server, model: OpenAIServer) -> None:
    before = len(model.requests)
    client = serving.client(timeout=300)
    run_id = client.post("/v1/goals", json={"goal": GOAL}).json()["id"]
    received: list[tuple[float, dict[str, Any]]] = []
    with client.stream("GET", f"/v1/goals/{run_id}/events") as response:
        for event in iter_sse(response):
            received.append((time.time(), event))
    events = [e for _, e in received]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "done", events[-1]
    decision = [(t, e) for t, e in received if e["type"] == "token" and e.get("tool") == "submit_decision"]
    assert len(decision) > 10
    index = _decision_request(model, before)
    assert decision[0][0] < model.ended[index], "the first token arrived before the model's reply ended"
    # Tokens carry no id (a reconnect resumes after stored events only) and sit after the stored event before them.
    assert all(e["_id"] is None for _, e in decision)
    stored = [e for e in events if e["type"] != "token"]
    assert [int(e["_id"]) for e in stored] == list(range(1, len(stored) + 1))
    started = next(i for i, e in enumerate(events) if e["type"] == "step_started" and e.get("node") == "decide")
    first = events.index(decision[0][1])
    assert started < first < next(i for i, e in enumerate(events) if e["type"] == "decision")
    summary = json.loads("".join(e["args"] for _, e in decision))["summary"]
    assert summary == client.get(f"/v1/goals/{run_id}").json()["decision"]["summary"]


def test_the_openai_client_gets_the_decision_as_token_deltas_before_the_reply_ends(
        serving: Server, model: OpenAIServer) -> None:
    before = len(model.requests)
    client = openai.OpenAI(base_url=f"{serving.url}/v1", api_key=serving.token, max_retries=0, timeout=300)
    deltas: list[tuple[float, str]] = []
    for chunk in client.chat.completions.create(model="mesh", messages=[{"role": "user", "content": GOAL}],
                                                stream=True):
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.append((time.time(), choice.delta.content))
    text = "".join(d for _, d in deltas)
    head, _, decision = text.partition("\n---\n\n")
    assert "**Plan**" in head and "get_service_metrics" in head, "progress lines come first"
    assert decision.startswith("**") and "status done" in decision
    # The decision's text came as many deltas, the first of them while the model was still writing it.
    at = next(i for i, (_, d) in enumerate(deltas) if "---" in d)
    live = deltas[at:]
    assert len(live) > 10
    index = _decision_request(model, before)
    assert live[0][0] < model.ended[index]
    assert live[1][0] < model.ended[index]
