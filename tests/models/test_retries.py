"""One retry layer: 429 with Retry-After, 5xx, timeouts and cut connections; exactly retries + 1 requests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import openai
import pytest

from agentmesh.core.exceptions import ModelError
from agentmesh.models import is_transport_failure, make_chat_model, model_error, retry_after_s
from agentmesh.testing import cut, error, slow, text


async def test_429_with_retry_after_then_success(server, settings_for, retry, waits):
    server.script += [error(429, retry_after=7), text("done")]
    chat = make_chat_model(settings_for(server), retry=retry(3))
    assert (await chat.ainvoke("hi")).content == "done"
    assert len(server.requests) == 2
    assert waits == [7.0]


def test_429_sync_path_honours_retry_after_too(server, settings_for, retry, waits):
    server.script += [error(429, retry_after=3), text("done")]
    assert make_chat_model(settings_for(server), retry=retry(3)).invoke("hi").content == "done"
    assert len(server.requests) == 2
    assert waits == [3.0]


async def test_retry_after_as_http_date_and_capped(server, settings_for, retry, waits):
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.script += [error(429, retry_after=later), error(429, retry_after=3600), text("done")]
    chat = make_chat_model(settings_for(server), retry=retry(3, max_retry_after_s=45))
    assert (await chat.ainvoke("hi")).content == "done"
    assert len(server.requests) == 3
    assert 20 < waits[0] <= 30
    assert waits[1] == 45


def test_retry_after_parsing():
    assert retry_after_s(httpx.Headers({"retry-after": "2"})) == 2.0
    assert retry_after_s(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after_s(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_s(httpx.Headers({})) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_then_success(server, settings_for, retry, waits, status):
    server.script += [error(status), text("done")]
    chat = make_chat_model(settings_for(server), retry=retry(3, base_wait_s=0.5, max_wait_s=4))
    assert (await chat.ainvoke("hi")).content == "done"
    assert len(server.requests) == 2
    assert len(waits) == 1 and 0.5 <= waits[0] <= 1.0  # exponential backoff from base, plus jitter


async def test_backoff_grows_and_is_capped(server, settings_for, retry, waits):
    server.script += [error(503)] * 4 + [text("done")]
    chat = make_chat_model(settings_for(server), retry=retry(4, base_wait_s=1, max_wait_s=3))
    assert (await chat.ainvoke("hi")).content == "done"
    assert len(waits) == 4
    assert 1 <= waits[0] <= 2 and 2 <= waits[1] <= 3 and waits[2] == waits[3] == 3


async def test_timeout_then_success(server, settings_for, retry, waits):
    reasons: list[str] = []
    server.script += [slow(5, "too late"), text("in time")]
    settings = settings_for(server, model_timeout_s=1.0)
    chat = make_chat_model(settings, retry=retry(2, on_retry=lambda wait, reason: reasons.append(reason)))
    assert (await chat.ainvoke("hi")).content == "in time"
    assert len(server.requests) == 2
    assert reasons == ["ReadTimeout"]


async def test_persistent_timeout_gives_a_clear_model_error(server, settings_for, retry):
    settings = settings_for(server, model_timeout_s=0.1, model_retries=2)
    server.script += [slow(5)] * 3
    with pytest.raises(openai.APITimeoutError) as caught:
        await make_chat_model(settings, retry=retry(settings.model_retries)).ainvoke("hi")
    assert len(server.requests) == settings.model_retries + 1
    assert is_transport_failure(caught.value)
    err = model_error(caught.value)
    assert isinstance(err, ModelError)
    assert "did not answer within 0.1s, after every retry" in str(err) and server.base_url in str(err)
    assert "\n" not in str(err)


@pytest.mark.parametrize("sync", [False, True])
async def test_connection_cut_mid_body_then_success(server, settings_for, retry, sync):
    server.script += [cut(text("x" * 5000)), text("whole")]
    chat = make_chat_model(settings_for(server), retry=retry(2))
    reply = chat.invoke("hi") if sync else await chat.ainvoke("hi")
    assert reply.content == "whole"
    assert len(server.requests) == 2


@pytest.mark.parametrize("retries", [0, 1, 3])
async def test_exhausted_retries_make_exactly_retries_plus_one_requests(server, settings_for, retry, retries):
    settings = settings_for(server, model_retries=retries)
    server.script += [error(500)] * (retries + 5)
    with pytest.raises(openai.InternalServerError) as caught:
        await make_chat_model(settings, retry=retry(settings.model_retries)).ainvoke("hi")
    assert len(server.requests) == retries + 1
    assert is_transport_failure(caught.value)
    assert "(500) after every retry" in str(model_error(caught.value))


async def test_exhausted_429_is_a_rate_limit_error(server, settings_for, retry, waits):
    server.script += [error(429, retry_after=1)] * 3
    with pytest.raises(openai.RateLimitError) as caught:
        await make_chat_model(settings_for(server), retry=retry(2)).ainvoke("hi")
    assert len(server.requests) == 3 and waits == [1.0, 1.0]
    assert "rate limiting (429)" in str(model_error(caught.value))


def test_settings_model_retries_is_the_default_retry_count(server, settings_for, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    server.script += [error(503)] * 10
    with pytest.raises(openai.InternalServerError):
        make_chat_model(settings_for(server, model_retries=2)).invoke("hi")
    assert len(server.requests) == 3 and len(slept) == 2


async def test_4xx_is_not_retried(server, settings_for, retry):
    server.script += [
        error(400, body={"error": {"message": "bad messages", "type": "invalid_request_error"}})
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        await make_chat_model(settings_for(server), retry=retry(3)).ainvoke("hi")
    assert len(server.requests) == 1
    assert not is_transport_failure(caught.value)
    assert not is_transport_failure(ValueError("a bug"))


async def test_unreachable_base_url_is_a_one_line_model_error(settings_for, retry, waits):
    with socket_nobody_listens_on() as url:
        chat = make_chat_model(settings_for(url), retry=retry(1))
        with pytest.raises(openai.APIConnectionError) as caught:
            await chat.ainvoke("hi")
    assert len(waits) == 1  # a refused connection is retried too: the endpoint may be restarting
    message = str(model_error(caught.value))
    assert message == f"cannot reach the model endpoint at {url}: connection refused — check OPENAI_BASE_URL"


async def test_wrong_key_and_unknown_model(settings_for, retry):
    from agentmesh.testing import OpenAIServer

    with OpenAIServer(api_key="sk-the-right-key-000000", models=["gpt-4o-mini"]) as server:
        with pytest.raises(openai.AuthenticationError) as caught:
            await make_chat_model(settings_for(server), retry=retry(3)).ainvoke("hi")
        assert (
            str(model_error(caught.value))
            == "the model endpoint rejected the API key (401) — check OPENAI_API_KEY"
        )
        settings = settings_for(server, openai_api_key="sk-the-right-key-000000", model="gpt-9")
        with pytest.raises(openai.NotFoundError) as caught:
            await make_chat_model(settings, retry=retry(3)).ainvoke("hi")
        assert "has no model 'gpt-9'" in str(model_error(caught.value))
        assert (
            len(server.requests) == 0
        )  # refused before the script: neither reached a reply, neither retried


async def test_secrets_never_appear_in_model_errors(server, settings_for, retry, api_key):
    leaky = {"error": {"message": f"key {api_key} is bad\nsecond line", "type": "invalid_request_error"}}
    server.script += [error(400, body=leaky), error(401), error(500), error(429), slow(5)]
    settings = settings_for(server, model_timeout_s=1.0)  # long enough for a loaded machine's quick replies
    chat = make_chat_model(settings, retry=retry(0))
    messages = []
    for _ in range(5):
        with pytest.raises(openai.APIError) as caught:
            await chat.ainvoke("hi")
        messages.append(str(model_error(caught.value)))
    assert len(set(messages)) == 5
    for message in messages:
        assert api_key not in message and api_key[-8:] not in message
        assert "\n" not in message


def test_model_error_ignores_other_exceptions():
    assert model_error(ValueError("x")) is None
    wrapped = ModelError("already explained")
    assert model_error(wrapped) is wrapped


class socket_nobody_listens_on:
    """A loopback URL whose port was just free: connecting is refused."""

    def __enter__(self) -> str:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def __exit__(self, *exc_info: object) -> None:
        pass
