"""VCR cassettes of the OpenAI HTTP path: recorded against the local server, replayed with no server."""

from __future__ import annotations

import socket

import pytest
from vcr.errors import CannotOverwriteExistingCassetteException

from agentmesh.models import make_chat_model
from agentmesh.testing import OpenAIServer, text, tool_call


def get_service_metrics(service: str) -> str:
    """Metrics of one service.

    Args:
        service: the service name
    """
    return "p95 900 ms"


def _unused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


async def _converse(chat) -> tuple[list, str]:
    first = await chat.bind_tools([get_service_metrics]).ainvoke("how is checkout-api?")
    second = await chat.ainvoke("and now?")
    return first.tool_calls, second.content


async def test_record_then_replay_with_the_server_stopped(tmp_path, vcr_cassette, settings_for, api_key):
    script = [tool_call("get_service_metrics", {"service": "checkout-api"}, id="call_1"), text("p95 is fine")]
    with OpenAIServer(script=script) as server:
        settings = settings_for(server)
        with vcr_cassette("conversation", directory=tmp_path, mode="all"):
            recorded = await _converse(make_chat_model(settings))
    assert len(server.requests) == 2

    with vcr_cassette("conversation", directory=tmp_path, mode="none"):
        replayed = await _converse(make_chat_model(settings))
    assert (
        replayed
        == recorded
        == (
            [
                {
                    "name": "get_service_metrics",
                    "args": {"service": "checkout-api"},
                    "id": "call_1",
                    "type": "tool_call",
                }
            ],
            "p95 is fine",
        )
    )
    assert len(server.requests) == 2  # the server was not asked again (and is stopped anyway)

    cassette = (tmp_path / "conversation.yaml").read_text()
    assert "chat/completions" in cassette
    assert api_key not in cassette and api_key[-8:] not in cassette
    assert "authorization" not in cassette.lower() and "bearer" not in cassette.lower()


async def test_replay_mode_refuses_requests_missing_from_the_cassette(tmp_path, vcr_cassette, settings_for):
    (tmp_path / "empty.yaml").write_text("interactions: []\nversion: 1\n")
    chat = make_chat_model(settings_for(_unused_url()))
    with vcr_cassette("empty", directory=tmp_path), pytest.raises(CannotOverwriteExistingCassetteException):
        await chat.ainvoke("hi")


async def test_committed_cassette_replays_with_no_server(vcr_cassette, settings_for, recording):
    """``tests/models/cassettes/tool_call_then_text.yaml``; AGENTMESH_RECORD=1 re-records it from a local server."""
    if not recording:
        with vcr_cassette("tool_call_then_text"):
            result = await _converse(make_chat_model(settings_for(_unused_url())))
    else:
        script = [
            tool_call("get_service_metrics", {"service": "checkout-api"}, id="call_1"),
            text("p95 is fine"),
        ]
        with OpenAIServer(script=script) as server, vcr_cassette("tool_call_then_text"):
            result = await _converse(make_chat_model(settings_for(server)))
    assert result[0][0]["args"] == {"service": "checkout-api"}
    assert result[1] == "p95 is fine"


def test_committed_cassettes_hold_no_credentials():
    from pathlib import Path

    cassettes = sorted((Path(__file__).parent / "cassettes").rglob("*.yaml"))
    assert cassettes
    for path in cassettes:
        content = path.read_text().lower()
        for needle in ("authorization", "bearer ", "api-key", "sk-"):
            assert needle not in content, f"{path.name} contains {needle!r}"
