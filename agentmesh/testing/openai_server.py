"""A real OpenAI-protocol HTTP server on 127.0.0.1 that answers from a script, faults included.

A test seam shipped with the library (like httpx's ``MockTransport``): tests, benchmarks and users' own
tests point ``OPENAI_BASE_URL`` at it and exercise the real ``langchain-openai`` HTTP path.

    with OpenAIServer(script=[
        tool_call("get_service_metrics", {"service": "checkout-api"}),
        error(429, retry_after=1),
        "p95 is 900 ms",                       # a plain string is a text reply
    ]) as server:
        chat = ChatOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        ...
        assert len(server.requests) == 3

Script items are consumed in order, one per ``POST /v1/chat/completions``; after the script, the
``responder(request_json)`` (if any) answers. With neither left, the server answers 400 "script exhausted".
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIServer", "Reply", "ToolCall", "cut", "empty", "error", "huge", "slow", "text", "tool_call"]


@dataclass(kw_only=True)
class ToolCall:
    """One tool call in a reply."""

    name: str
    """The tool's name, as the model would give it (unknown names are allowed: that is a fault to test)."""
    arguments: str | dict[str, Any] = field(default_factory=dict)
    """A dict (sent as JSON) or a raw string, which may be malformed JSON on purpose."""
    id: str | None = None
    """The call id; a fresh ``call_…`` id when None."""


@dataclass(kw_only=True)
class Reply:
    """One scripted answer: a completion, or a fault."""

    content: str | None = None
    """Text content; None with tool calls is what real endpoints send."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    """Tool calls, in order (several make a parallel tool call)."""
    prompt_tokens: int | None = None
    """Usage reported; None estimates ~4 characters a token from the request."""
    completion_tokens: int | None = None
    """Usage reported; None estimates ~4 characters a token from the reply."""
    finish_reason: str | None = None
    """None picks ``tool_calls`` or ``stop``."""
    status: int = 200
    """An HTTP status other than 200 makes this an error reply."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``Retry-After``."""
    body: str | dict[str, Any] | None = None
    """The body of an error reply; None sends an OpenAI-style error object."""
    delay_s: float = 0.0
    """Seconds to wait before answering (past the client's timeout, it is a timeout)."""
    cut: bool = False
    """Send the headers and part of the body, then close the connection."""
    token_delay_s: float | None = None
    """Seconds between this reply's streamed chunks; None uses the server's ``token_delay_s``."""


ScriptItem = Reply | str
Responder = Callable[[dict[str, Any]], ScriptItem]


def text(content: str, **kwargs: Any) -> Reply:
    """A text reply."""
    return Reply(content=content, **kwargs)


def tool_call(
    name: str, arguments: str | dict[str, Any] | None = None, *, id: str | None = None, **kwargs: Any
) -> Reply:
    """A reply with one tool call; for parallel calls use ``Reply(tool_calls=[ToolCall(...), ...])``."""
    return Reply(
        tool_calls=[ToolCall(name=name, arguments={} if arguments is None else arguments, id=id)], **kwargs
    )


def error(
    status: int, *, retry_after: float | str | None = None, body: str | dict[str, Any] | None = None
) -> Reply:
    """An HTTP error reply (429, 500, 503…), optionally with ``Retry-After`` (seconds or an HTTP date)."""
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return Reply(status=status, headers=headers, body=body)


def slow(delay_s: float, reply: ScriptItem = "") -> Reply:
    """``reply`` after ``delay_s`` seconds: a timeout when the client gives up sooner."""
    return replace(_as_reply(reply), delay_s=delay_s)


def cut(reply: ScriptItem = "this reply is cut off") -> Reply:
    """A reply whose connection closes mid-body."""
    return replace(_as_reply(reply), cut=True)


def empty() -> Reply:
    """A valid reply with empty content and no tool calls."""
    return Reply(content="")


def huge(chars: int = 1_000_000) -> Reply:
    """A valid reply with an enormous content."""
    return Reply(content=("lorem ipsum " * (chars // 12 + 1))[:chars])


def _as_reply(item: ScriptItem) -> Reply:
    return Reply(content=item) if isinstance(item, str) else item


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class OpenAIServer:
    """A local OpenAI-compatible server run in a background thread; use it as a context manager."""

    def __init__(
        self,
        script: Iterable[ScriptItem] = (),
        *,
        responder: Responder | None = None,
        latency_s: float = 0.0,
        token_delay_s: float = 0.0,
        api_key: str | None = None,
        models: Iterable[str] | None = None,
    ) -> None:
        self.script: list[ScriptItem] = list(script)
        """Items not yet answered with (consumed from the front)."""
        self.responder = responder
        self.latency_s = latency_s
        """Seconds added before every reply."""
        self.token_delay_s = token_delay_s
        """Seconds between streamed chunks."""
        self.api_key = api_key
        """When set, requests without ``Authorization: Bearer <api_key>`` get 401."""
        self.models = list(models) if models is not None else None
        """When set, the only model names accepted (others get 404 ``model_not_found``)."""
        self.requests: list[dict[str, Any]] = []
        """JSON bodies of the chat completion requests received, in order."""
        self.ended: dict[int, float] = {}
        """Request index (in ``requests``) -> ``time.time()`` when its reply's last byte was written."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "the server is not running"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> OpenAIServer:
        self._stopping.clear()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"OpenAIServer:{self._httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()  # joins the connection threads
        assert self._thread is not None
        self._thread.join()
        self._httpd = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- behaviour ----------------------------------------------------------------------------------

    def _next(self, body: dict[str, Any]) -> tuple[int, Reply]:
        with self._lock:
            self.requests.append(body)
            index = len(self.requests) - 1
            if self.script:
                return index, _as_reply(self.script.pop(0))
        if self.responder is not None:
            return index, _as_reply(self.responder(body))
        return index, Reply(
            status=400,
            body={
                "error": {
                    "message": f"OpenAIServer script exhausted: request {index + 1} has no scripted reply",
                    "type": "invalid_request_error",
                    "code": "script_exhausted",
                }
            },
        )

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints
    disable_nagle_algorithm = True  # else keep-alive replies stall ~40 ms on delayed ACKs
    server_state: OpenAIServer

    def setup(self) -> None:
        super().setup()
        with self.server_state._lock:
            self.server_state._connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server_state._lock:
            self.server_state._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    # -- routes -------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        state = self.server_state
        if state.api_key and self.headers.get("Authorization") != f"Bearer {state.api_key}":
            self._json(401, _error_body("Incorrect API key provided.", "invalid_api_key"))
            return
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            names = self.server_state.models or ["gpt-4o-mini"]
            self._json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": n, "object": "model", "created": 0, "owned_by": "agentmesh"} for n in names
                    ],
                },
            )
        else:
            self._json(404, _error_body(f"no route GET {self.path}", "not_found"))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._json(404, _error_body(f"no route POST {self.path}", "not_found"))
            return
        state = self.server_state
        if state.api_key and self.headers.get("Authorization") != f"Bearer {state.api_key}":
            self._json(401, _error_body("Incorrect API key provided.", "invalid_api_key"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._json(400, _error_body("request body is not JSON", "invalid_json"))
            return
        if state.models is not None and body.get("model") not in state.models:
            self._json(404, _error_body(f"The model `{body.get('model')}` does not exist", "model_not_found"))
            return
        index, reply = state._next(body)
        state._wait(state.latency_s + reply.delay_s)
        if state._stopping.is_set():
            self.close_connection = True
            return
        if reply.status != 200:
            payload = (
                reply.body if reply.body is not None else _error_body(f"scripted {reply.status}", "scripted")
            )
            self._send(reply.status, payload, reply.headers, cut=reply.cut)
        elif body.get("stream"):
            self._stream(body, reply)
        else:
            self._send(200, _completion(body, reply), reply.headers, cut=reply.cut)
        with contextlib.suppress(OSError):
            self.wfile.flush()
        state.ended[index] = time.time()

    # -- writing ------------------------------------------------------------------------------------

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, payload, {})

    def _send(self, status: int, payload: Any, headers: dict[str, str], *, cut: bool = False) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        content_type = "text/plain" if isinstance(payload, str) else "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self._cut()
        else:
            self.wfile.write(data)

    def _cut(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _stream(self, request: dict[str, Any], reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        delay = self.server_state.token_delay_s if reply.token_delay_s is None else reply.token_delay_s
        for index, event in enumerate(_chunks(request, reply, include_usage=include_usage)):
            if index and delay:
                self.server_state._wait(delay)
            if reply.cut and index == 2:
                self._cut()
                return
            data = f"data: {event}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


def _error_body(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def _wire_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": call.id or f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": call.arguments
                if isinstance(call.arguments, str)
                else json.dumps(call.arguments),
            },
        }
        for call in reply.tool_calls
    ]


def _usage(request: dict[str, Any], reply: Reply, calls: list[dict[str, Any]]) -> dict[str, int]:
    prompt = (
        reply.prompt_tokens
        if reply.prompt_tokens is not None
        else _tokens(json.dumps(request.get("messages")))
    )
    produced = (reply.content or "") + "".join(
        c["function"]["name"] + c["function"]["arguments"] for c in calls
    )
    completion = reply.completion_tokens if reply.completion_tokens is not None else _tokens(produced)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _completion(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    calls = _wire_calls(reply)
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "unknown"),
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(reply)}],
        "usage": _usage(request, reply, calls),
    }


def _pieces(text: str, size: int = 8) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _chunks(request: dict[str, Any], reply: Reply, *, include_usage: bool) -> Iterator[str]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", "unknown"),
        "system_fingerprint": None,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps(
            {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        )

    calls = _wire_calls(reply)
    yield chunk({"role": "assistant", "content": "" if not calls else None})
    for piece in _pieces(reply.content or "", 16):
        yield chunk({"content": piece})
    for index, call in enumerate(calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        for piece in _pieces(call["function"]["arguments"]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, _finish(reply))
    if include_usage:
        yield json.dumps({**base, "choices": [], "usage": _usage(request, reply, calls)})
    yield "[DONE]"
