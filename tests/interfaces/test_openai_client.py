"""The official `openai` client submits goals to the server's OpenAI-compatible endpoints."""

from __future__ import annotations

import re

import openai
import pytest
from serve_harness import Server

pytestmark = pytest.mark.slow


def client_for(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.token, max_retries=0, timeout=120)


def test_models_are_the_graphs(server: Server) -> None:
    models = client_for(server).models.list()
    assert "mesh" in [m.id for m in models.data]


def test_a_plain_completion_is_the_decision(server: Server) -> None:
    reply = client_for(server).chat.completions.create(
        model="mesh", messages=[{"role": "user", "content": "What is the p95 latency of payments-api right now?"}])
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    text = choice.message.content or ""
    assert "Actions taken" in text and "status done" in text
    assert "payments-api" in text
    run_id = re.search(r"agentmesh run ([0-9a-f-]{36})", text).group(1)  # type: ignore[union-attr]
    assert reply.id == f"chatcmpl-{run_id}"
    assert reply.usage is not None and reply.usage.total_tokens > 0


def test_a_streamed_completion_shows_progress_then_the_decision_and_approvals_continue_in_the_thread(
        server: Server) -> None:
    client = client_for(server)
    goal = "checkout-api p95 is at 900 ms, keep it under 300 ms"
    messages = [{"role": "system", "content": "You are an operator's assistant."}, {"role": "user", "content": goal}]
    pieces = []
    finishes = []
    for chunk in client.chat.completions.create(model="mesh", messages=messages, stream=True,  # type: ignore[arg-type]
                                                stream_options={"include_usage": True}):
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finishes.append(choice.finish_reason)
    text = "".join(pieces)
    assert len([p for p in pieces if p]) > 5, "progress arrives in many deltas, not one reply"
    assert text.index("**Plan**") < text.index("get_service_metrics") < text.index("Waiting for approval")
    assert "scale_service" in text and finishes[-1] == "stop"

    # The conversation goes on: "approve" resolves the pending call of the run named in the last reply.
    messages += [{"role": "assistant", "content": text}, {"role": "user", "content": "approve, looks right"}]
    reply = client.chat.completions.create(model="mesh", messages=messages)  # type: ignore[arg-type]
    decided = reply.choices[0].message.content or ""
    assert "status done" in decided
    assert "**Actions taken**" in decided and "scale_service" in decided


def test_approve_with_edited_arguments_in_the_conversation(server: Server) -> None:
    client = client_for(server)
    goal = 'Call scale_service as optimizer with {"service": "checkout-api", "replicas": 8}'
    messages = [{"role": "user", "content": goal}]
    paused = client.chat.completions.create(model="tool_call", messages=messages)  # type: ignore[arg-type]
    text = paused.choices[0].message.content or ""
    assert "Waiting for approval" in text

    messages += [{"role": "assistant", "content": text}, {"role": "user", "content": "approve with {nope"}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tool_call", messages=messages)  # type: ignore[arg-type]
    assert "the arguments after approve are not JSON" in str(caught.value)

    messages[-1] = {"role": "user", "content": 'approve with {"replicas": 5}, 5 is enough'}
    reply = client.chat.completions.create(model="tool_call", messages=messages)  # type: ignore[arg-type]
    decided = reply.choices[0].message.content or ""
    assert "status done" in decided and '"replicas": 5' in decided.replace('":5', '": 5'), decided
    run_id = re.search(r"agentmesh run ([0-9a-f-]{36})", decided).group(1)  # type: ignore[union-attr]
    with server.client() as http:
        (call,) = http.get(f"/v1/runs/{run_id}/audit").json()["data"]
    assert (call["args"]["replicas"], call["edited_args"]["replicas"], call["status"]) == (8, 5, "ok")
    assert (call["approver"], call["approval_reason"]) == ("api", "5 is enough")
