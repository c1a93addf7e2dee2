"""Chat models: ``ChatOpenAI`` for any OpenAI-compatible endpoint, the offline model, usage and cost.

Exactly one layer retries model transport failures: the httpx transport built here
(:class:`AsyncTenacityTransport` / :class:`TenacityTransport`). It retries 429 (honouring
``Retry-After``), 500/502/503/504, timeouts and cut connections, ``settings.model_retries`` times.
The OpenAI SDK is built with ``max_retries=0``, and the runtime asks :func:`is_transport_failure` before
letting Prefect retry a node. Retries that nest multiply: measured here, a LangGraph ``RetryPolicy`` of 3
around a Prefect task with ``retries=2`` around the SDK's default 2 made 27 HTTP calls for one failing
request. With one layer, a request that keeps failing makes exactly ``model_retries + 1`` calls.

    >>> chat = make_chat_model(Settings(model="offline"))
    >>> chat.invoke("hello")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from agentmesh.core.exceptions import ConfigError, ModelError
from agentmesh.core.settings import Settings

if TYPE_CHECKING:
    from agentmesh.models.offline import OfflineRules

__all__ = [
    "AsyncTenacityTransport",
    "PieceSink",
    "TenacityTransport",
    "TransportRetry",
    "astream_reply",
    "cost_usd",
    "is_transport_failure",
    "make_chat_model",
    "shared_chat_model",
    "langgraph_streams_messages",
    "model_error",
    "usage_of",
]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Timeouts, refused/reset/cut connections. Not LocalProtocolError or UnsupportedProtocol: those are bugs.
RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(kw_only=True)
class TransportRetry:
    """How the transport retries one model request."""

    retries: int = 3
    """Retries after the first attempt; a request that keeps failing makes ``retries + 1`` HTTP calls."""
    base_wait_s: float = 0.25
    """First backoff; doubles each retry, plus up to this much jitter."""
    max_wait_s: float = 8.0
    """Cap on one backoff wait."""
    max_retry_after_s: float = 60.0
    """Cap on a server's ``Retry-After``."""
    sleep: Callable[[float], Any] | None = None
    """Test seam replacing ``time.sleep`` / ``asyncio.sleep``: a plain function, or an async one (async only)."""
    on_retry: Callable[[float, str], None] | None = None
    """Called before each wait with the seconds to wait and the reason (``"429"``, ``"ReadTimeout"``…)."""

    def wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            after = retry_after_s(outcome.result().headers)
            if after is not None:
                return min(after, self.max_retry_after_s)
        return wait_exponential_jitter(
            multiplier=self.base_wait_s, max=self.max_wait_s, jitter=self.base_wait_s
        )(state)

    def _kwargs(self, default_sleep: Callable[[float], Any]) -> dict[str, Any]:
        return {
            "retry": retry_if_exception_type(RETRY_EXCEPTIONS) | retry_if_result(_retryable_response),
            "stop": stop_after_attempt(self.retries + 1),
            "wait": self.wait,
            "sleep": self.sleep or default_sleep,
            "before_sleep": self._before_sleep,
            # Exhausted: re-raise the last exception, or hand the last error response to the SDK, which
            # turns it into its own typed error (RateLimitError, InternalServerError…).
            "retry_error_callback": lambda state: state.outcome.result(),  # type: ignore[union-attr]
        }

    def _before_sleep(self, state: RetryCallState) -> None:
        outcome = state.outcome
        assert outcome is not None
        reason = type(outcome.exception()).__name__ if outcome.failed else str(outcome.result().status_code)
        wait = state.upcoming_sleep
        log.warning(
            "model request failed (%s); retry %d of %d in %.2fs",
            reason,
            state.attempt_number,
            self.retries,
            wait,
        )
        if self.on_retry:
            self.on_retry(wait, reason)


def retry_after_s(headers: httpx.Headers) -> float | None:
    """Seconds a server asks us to wait: ``retry-after-ms``, or ``Retry-After`` in seconds or as an HTTP date."""
    with_ms = headers.get("retry-after-ms")
    if with_ms:
        try:
            return max(float(with_ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def _retryable_response(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES


def _must_read(response: httpx.Response) -> bool:
    # Read plain bodies here, so a connection cut mid-body is retried; never buffer a good SSE stream.
    event_stream = response.headers.get("content-type", "").startswith("text/event-stream")
    return not event_stream or response.status_code in RETRY_STATUSES


class TenacityTransport(httpx.BaseTransport):
    """An httpx transport that retries transport failures with tenacity (see :class:`TransportRetry`)."""

    def __init__(self, retry: TransportRetry, wrapped: httpx.BaseTransport | None = None) -> None:
        self.retry = retry
        self.wrapped = wrapped or httpx.HTTPTransport()

    def _attempt(self, request: httpx.Request) -> httpx.Response:
        response = self.wrapped.handle_request(request)
        if _must_read(response):
            try:
                response.read()
            finally:
                response.close()
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return Retrying(**self.retry._kwargs(time.sleep))(self._attempt, request)

    def close(self) -> None:
        self.wrapped.close()


class AsyncTenacityTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`TenacityTransport`."""

    def __init__(self, retry: TransportRetry, wrapped: httpx.AsyncBaseTransport | None = None) -> None:
        self.retry = retry
        self.wrapped = wrapped or httpx.AsyncHTTPTransport()

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        response = await self.wrapped.handle_async_request(request)
        if _must_read(response):
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async def sleep(seconds: float) -> None:
            result = (self.retry.sleep or asyncio.sleep)(seconds)
            if inspect.isawaitable(result):
                await result

        return await AsyncRetrying(**{**self.retry._kwargs(asyncio.sleep), "sleep": sleep})(
            self._attempt, request
        )

    async def aclose(self) -> None:
        await self.wrapped.aclose()


def make_chat_model(
    settings: Settings, *, model: str | None = None, retry: TransportRetry | None = None,
    offline_rules: OfflineRules | None = None,
) -> BaseChatModel:
    """The chat model for ``settings`` (or the named ``model``): offline (playing ``offline_rules``, the plug-ins'
    rules for their domain), or ``ChatOpenAI`` with one retry layer."""
    name = model or settings.model_name
    if name == "offline":
        from agentmesh.models.offline import OfflineChatModel

        return OfflineChatModel(rules=offline_rules)
    if not settings.openai_api_key:
        raise ConfigError(
            f"model {name!r} needs an API key: set OPENAI_API_KEY (any value for a local server)"
        )
    from langchain_openai import ChatOpenAI

    retry = retry or TransportRetry(retries=settings.model_retries)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    extra: dict[str, Any] = (
        {} if settings.model_temperature is None else {"temperature": settings.model_temperature}
    )
    return ChatOpenAI(
        model=name,
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
        timeout=settings.model_timeout_s,
        max_retries=0,
        stream_usage=True,
        http_client=httpx.Client(
            transport=TenacityTransport(retry, httpx.HTTPTransport(limits=limits, verify=_ssl_context())),
            timeout=settings.model_timeout_s,
        ),
        http_async_client=httpx.AsyncClient(
            transport=AsyncTenacityTransport(retry, httpx.AsyncHTTPTransport(limits=limits, verify=_ssl_context())),
            timeout=settings.model_timeout_s,
        ),
        **extra,
    )


_shared: tuple[Any, dict[tuple[Any, ...], BaseChatModel]] = (None, {})


def shared_chat_model(settings: Settings, *, model: str | None = None,
                      offline_rules: OfflineRules | None = None) -> BaseChatModel:
    """``make_chat_model``'s model, built once per configuration for the goals of one event loop: a goal reuses
    the model and HTTP clients of the goals before it (and their open connections) instead of building
    ``ChatOpenAI`` and two clients each (~5 ms of CPU a goal). Only the newest loop's models are kept: an async
    client's connections belong to the loop they were opened on. The offline model is cheap and built each time."""
    global _shared
    name = model or settings.model_name
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if name == "offline" or loop is None:
        return make_chat_model(settings, model=name, offline_rules=offline_rules)
    if _shared[0] is not loop:
        _shared = (loop, {})
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    config = (name, settings.openai_base_url, key, settings.model_timeout_s, settings.model_retries,
              settings.model_temperature)
    found = _shared[1].get(config)
    if found is None:
        found = _shared[1][config] = make_chat_model(settings, model=name)
    return found


@functools.cache
def _ssl_context() -> Any:
    # Each goal builds its chat model; a new SSL context per client reloads the CA bundle (~20 ms of CPU,
    # far more on a busy machine). One shared context is what httpx would build each time.
    return httpx.create_ssl_context()


# -- streaming ------------------------------------------------------------------------------------------

PieceSink = Callable[[AIMessageChunk | None], None]
"""Receives each streamed piece of a reply as it arrives; None when a cut-off stream starts over."""


async def astream_reply(model: Any, messages: Sequence[BaseMessage], *, on_piece: PieceSink,
                        restarts: int) -> AIMessage:
    """One model reply, streamed: each piece goes to ``on_piece`` as it arrives; returns the whole reply.

    The whole reply is read as strictly as an unstreamed one: each tool call's arguments are parsed from their
    complete text with the parser langchain-openai uses for a whole reply (LangChain's own merge of streamed pieces
    parses them as *partial* JSON, which would accept a truncated object). A model that cannot stream gives its
    reply whole (no pieces). A stream cut off mid-body (the transport cannot retry what it already handed over)
    starts over, at most ``restarts`` times. An endpoint that reports no usage for a stream (some do for whole
    replies only) has it estimated at ~4 characters a token, so budgets keep counting.
    """
    for attempt in range(restarts + 1):
        pieces: list[AIMessageChunk] = []
        try:
            async for piece in model.astream(list(messages)):
                if not isinstance(piece, AIMessageChunk):
                    return piece  # type: ignore[no-any-return]
                pieces.append(piece)
                on_piece(piece)
            break
        except Exception as exc:
            if not pieces or attempt == restarts or not is_transport_failure(exc):
                raise
            log.warning("model reply cut off after %d pieces (%s); asking again (%d of %d)",
                        len(pieces), type(exc).__name__, attempt + 1, restarts)
            on_piece(None)
    if not pieces:
        raise ModelError("the model endpoint streamed an empty reply")
    from langchain_core.messages.ai import add_ai_message_chunks

    reply = _strict(add_ai_message_chunks(pieces[0], *pieces[1:]))
    if not reply.usage_metadata or not reply.usage_metadata.get("total_tokens"):
        sent = sum(len(str(m.content)) + sum(len(json.dumps(c["args"], default=str))
                                             for c in getattr(m, "tool_calls", None) or []) for m in messages)
        written = len(str(reply.content)) + sum(len(json.dumps(c["args"])) for c in reply.tool_calls)
        estimate = (max(1, sent // 4), max(1, written // 4))
        log.warning("the model endpoint reported no usage for a streamed reply; counting ~%d + %d tokens", *estimate)
        reply.usage_metadata = {"input_tokens": estimate[0], "output_tokens": estimate[1],
                                "total_tokens": sum(estimate)}
        reply.response_metadata["usage_estimated"] = True
    return reply


def _strict(whole: AIMessageChunk) -> AIMessage:
    from langchain_core.exceptions import OutputParserException
    from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call

    calls, invalid = [], []
    for chunk in whole.tool_call_chunks:
        raw = {"id": chunk.get("id"), "function": {"name": chunk.get("name") or "", "arguments": chunk.get("args") or ""}}
        try:
            calls.append(parse_tool_call(raw, return_id=True))
        except OutputParserException as exc:
            invalid.append(make_invalid_tool_call(raw, str(exc)))
    extra = {k: v for k, v in whole.additional_kwargs.items() if k not in ("tool_calls", "function_call")}
    return AIMessage(content=whole.content, additional_kwargs=extra, response_metadata=whole.response_metadata,
                     id=whole.id, tool_calls=calls, invalid_tool_calls=invalid, usage_metadata=whole.usage_metadata)


def langgraph_streams_messages() -> bool:
    """True inside a LangGraph node whose graph streams ``stream_mode="messages"`` (its handler is attached)."""
    from langchain_core.runnables.config import ensure_config
    from langchain_core.tracers._streaming import _StreamingCallbackHandler, _V2StreamingCallbackHandler

    callbacks = ensure_config().get("callbacks")
    handlers = getattr(callbacks, "handlers", None) if callbacks is not None else None
    handlers = handlers if handlers is not None else (callbacks if isinstance(callbacks, list) else [])
    # A v2 handler (LangGraph's own protocol streaming) is served by a plain invoke; only a v1 one needs astream.
    return any(isinstance(h, _StreamingCallbackHandler) and not isinstance(h, _V2StreamingCallbackHandler)
               for h in handlers)


# -- errors ---------------------------------------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_transport_failure(exc: BaseException) -> bool:
    """True if ``exc`` comes from a model transport failure the transport already retried: don't retry again."""
    import openai

    for err in _chain(exc):
        if isinstance(err, openai.APIConnectionError | httpx.TransportError):
            return True
        if isinstance(err, openai.APIStatusError) and err.status_code in RETRY_STATUSES:
            return True
    return False


_SECRETS = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|api[-_]key[=:]\s*\S+)", re.IGNORECASE)


def _one_line(text: str, limit: int = 240) -> str:
    text = _SECRETS.sub("****", " ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _endpoint(request: Any) -> str:
    """The base URL a request went to, without the operation path, credentials or query."""
    try:
        url = httpx.URL(str(request.url))
    except Exception:
        return "the configured URL"
    path = re.sub(r"/(chat/completions|completions|responses|embeddings|models)$", "", url.path)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{path}"


def _requested_model(request: Any) -> str | None:
    try:
        return json.loads(request.content).get("model")
    except Exception:
        return None


def _connect_reason(err: BaseException) -> str:
    causes = _chain(err)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    if any(isinstance(c, socket.gaierror) for c in causes):
        return "host not found"
    return (
        "certificate rejected" if "certificate" in " ".join(map(str, causes)).lower() else "connection failed"
    )


def _timeout_s(request: Any) -> str:
    read = (getattr(request, "extensions", None) or {}).get("timeout", {}).get("read")
    return f" within {read:g}s" if isinstance(read, int | float) else ""


def model_error(exc: BaseException) -> ModelError | None:
    """A :class:`ModelError` with a one-line, secret-free, actionable message; None if ``exc`` is no endpoint failure.

    Raise it ``from`` the original: ``raise model_error(exc) from exc``.
    """
    import openai

    for err in _chain(exc):
        if isinstance(err, ModelError):
            return err
        if isinstance(err, openai.APIError | httpx.TransportError):
            return ModelError(_one_line(_describe(err)))
    return None


def _describe(err: Any) -> str:
    import openai

    where = _endpoint(err.request)
    if isinstance(err, openai.APITimeoutError | httpx.TimeoutException):
        return (
            f"the model endpoint at {where} did not answer{_timeout_s(err.request)}, after every retry — "
            "check the endpoint or raise AGENTMESH_MODEL_TIMEOUT_S"
        )
    if any(isinstance(c, httpx.ConnectError) for c in _chain(err)):
        return f"cannot reach the model endpoint at {where}: {_connect_reason(err)} — check OPENAI_BASE_URL"
    if not isinstance(err, openai.APIStatusError):
        return f"the connection to the model endpoint at {where} kept failing, after every retry — check the endpoint"
    status, name = err.status_code, _requested_model(err.request)
    if status == 401:
        return "the model endpoint rejected the API key (401) — check OPENAI_API_KEY"
    if status == 403:
        return f"the model endpoint refused access (403) to model {name!r} — check the key's permissions"
    if status == 404 and name and "model" in str(err.message).lower():
        return f"the endpoint at {where} has no model {name!r} (404) — check AGENTMESH_MODEL or --model"
    if status == 404:
        return f"the endpoint at {where} answered 404 — check OPENAI_BASE_URL (it usually ends in /v1)"
    if status == 429 and err.code == "insufficient_quota":
        return "the model endpoint says the account's quota is used up (429) — check billing"
    if status == 429:
        return (
            f"the model endpoint at {where} is still rate limiting (429) after every retry — "
            "lower concurrency or raise AGENTMESH_MODEL_RETRIES"
        )
    if status >= 500:
        return f"the model endpoint at {where} kept failing ({status}) after every retry — try again later"
    return f"the model endpoint at {where} rejected the request ({status}): {err.message}"


# -- usage and cost -------------------------------------------------------------------------------------


def usage_of(message: AIMessage) -> tuple[int, int]:
    """Input and output tokens of one model reply, from ``usage_metadata`` (0 when the endpoint sent none)."""
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


def cost_usd(settings: Settings, model_name: str, input_tokens: int, output_tokens: int) -> float | None:
    """Dollars for these tokens at the model's price; None for a model with no known price (tokens only)."""
    price = settings.price(model_name)
    if price is None:
        return None
    return (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1_000_000
