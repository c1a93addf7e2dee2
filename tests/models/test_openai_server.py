"""The scripted OpenAI-protocol server itself: routes, responders, faults, a clean stop."""

from __future__ import annotations

import socket
import threading
from typing import Any

import httpx
import openai
import pytest

from agentmesh.models import make_chat_model, usage_of
from agentmesh.testing import OpenAIServer, Reply, cut, empty, huge, text, tool_call


def scale_service(service: str, replicas: int) -> str:
    """Scale a service.

    Args:
        service: the service name
        replicas: how many replicas
    """
    return "ok"


def test_lists_models(server):
    reply = httpx.get(f"{server.base_url}/models")
    assert reply.status_code == 200
    assert [m["id"] for m in reply.json()["data"]] == ["gpt-4o-mini"]


async def test_a_responder_answers_any_number_of_requests(settings_for):
    def first_tool(request: dict[str, Any]) -> Reply | str:
        tools = request.get("tools") or []
        if tools:
            return tool_call(
                tools[0]["function"]["name"], {"service": "search", "replicas": len(request["messages"])}
            )
        return "no tools offered"

    with OpenAIServer(script=["scripted first"], responder=first_tool) as server:
        chat = make_chat_model(settings_for(server))
        assert (await chat.ainvoke("hi")).content == "scripted first"
        tooled = chat.bind_tools([scale_service])
        for _ in range(20):
            reply = await tooled.ainvoke("go")
            assert reply.tool_calls[0]["name"] == "scale_service"
        assert (await chat.ainvoke("hi")).content == "no tools offered"
        assert len(server.requests) == 22


async def test_an_exhausted_script_says_so(server, settings_for, retry):
    with pytest.raises(openai.BadRequestError, match="script exhausted"):
        await make_chat_model(settings_for(server), retry=retry(3)).ainvoke("hi")
    assert len(server.requests) == 1


async def test_every_reply_reports_usage(server, settings_for):
    server.script += [
        "a fairly long answer " * 10,
        tool_call("scale_service", {"service": "a", "replicas": 2}),
    ]
    chat = make_chat_model(settings_for(server)).bind_tools([scale_service])
    for _ in range(2):
        prompt, completion = usage_of(await chat.ainvoke("a question " * 40))
        assert prompt > 40 and completion > 0


async def test_empty_and_huge_replies(server, settings_for):
    server.script += [empty(), huge(1_000_000)]
    chat = make_chat_model(settings_for(server))
    assert (await chat.ainvoke("hi")).content == ""
    assert len((await chat.ainvoke("hi")).content) == 1_000_000


async def test_unknown_tool_names_pass_through_untouched(server, settings_for):
    server.script.append(tool_call("drop_database", {"really": True}))
    reply = await make_chat_model(settings_for(server)).bind_tools([scale_service]).ainvoke("hi")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("drop_database", {"really": True})]


async def test_a_stream_cut_midway_is_not_retried(server, settings_for, retry):
    """Once tokens have been delivered a retry would duplicate them: the failure surfaces instead."""
    server.script += [cut(text("a long streamed answer that never finishes")), text("unused")]
    chat = make_chat_model(settings_for(server), retry=retry(3))
    with pytest.raises((openai.APIError, httpx.TransportError)):
        async for _ in chat.astream("hi"):
            pass
    assert len(server.requests) == 1


def test_latency_and_token_delay_are_applied_per_request(settings_for):
    with OpenAIServer(script=["one two three four five six"], latency_s=0.01, token_delay_s=0.001) as server:
        chunks = list(make_chat_model(settings_for(server)).stream("hi"))
        assert "".join(str(c.content) for c in chunks) == "one two three four five six"


def test_stops_cleanly_with_a_request_in_flight():
    before = {t.ident for t in threading.enumerate()}
    server = OpenAIServer(script=[Reply(content="late", delay_s=60)]).start()
    port = int(server.base_url.split(":")[2].split("/")[0])
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(
                httpx.post(
                    f"{server.base_url}/chat/completions", json={"model": "m", "messages": []}, timeout=120
                )
            )
        except httpx.TransportError as exc:
            outcome.append(exc)

    client = threading.Thread(target=call)
    client.start()
    while not server.requests:  # the request is in, and its handler is waiting out the delay
        threading.Event().wait(0.005)
    server.stop()
    client.join()
    assert isinstance(outcome[0], httpx.TransportError)
    assert {t.ident for t in threading.enumerate()} <= before
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_keep_alive_connections_do_not_block_stop():
    with OpenAIServer(script=["a", "b"]) as server, httpx.Client() as client:
        for expected in ("a", "b"):
            body = client.post(
                f"{server.base_url}/chat/completions", json={"model": "m", "messages": []}
            ).json()
            assert body["choices"][0]["message"]["content"] == expected
    # leaving the server block with the client's connection still open must not hang
