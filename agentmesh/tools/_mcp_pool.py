"""Connections to MCP servers, reused by every call of a process, on one background event loop.

The SDK's ``Client`` is an async context manager bound to the task that entered it, while agentmesh calls tools
from many event loops (an ``asyncio.run`` per CLI command, the HTTP server's loop, Prefect's threads). So each
connection lives in a task of its own on a daemon thread's loop (``agentmesh-mcp``), which enters and leaves
the client; callers on any loop or thread hand their coroutines to that loop. A connection opens on first use
and stays open for later calls and goals. When its server goes away — the child process exits, the HTTP server
stops answering — the call in flight fails at once (never waits for its timeout) and the next call starts or
reaches the server again. A stdio server's stderr goes to ``$AGENTMESH_HOME/mcp/NAME.log``, whose last line
explains a server that would not start.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT, CallToolResult, Implementation
from mcp.types import Tool as McpTool

from agentmesh.core.exceptions import AgentmeshError, ToolError
from agentmesh.core.mcp_config import McpServerConfig, expand, expand_path

__all__ = ["Connection", "connection", "run_sync"]

T = TypeVar("T")

_CLOSE_TIMEOUT_S = 8.0
_HTTP_TIMEOUT_S = 30.0


class _LoopThread:
    """An event loop running forever in a daemon thread: where every MCP connection of the process lives."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="agentmesh-mcp", daemon=True)
        self.thread.start()


_loop_thread: _LoopThread | None = None
_connections: dict[tuple[str, str], Connection] = {}
_lock = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    global _loop_thread
    with _lock:
        if _loop_thread is None:
            _loop_thread = _LoopThread()
            atexit.register(close_all)
        return _loop_thread.loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Run a coroutine on the MCP loop; the future can be awaited from any loop (``asyncio.wrap_future``)."""
    return asyncio.run_coroutine_threadsafe(coro, _loop())


def run_sync(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run a coroutine on the MCP loop and wait for it here (never call this on the MCP loop itself)."""
    future = submit(coro)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError from None


def connection(name: str, config: McpServerConfig, *, log_dir: Path) -> Connection:
    """The process's connection to this server as configured (a changed table is a new connection)."""
    key = (name, config.fingerprint())
    with _lock:
        found = _connections.get(key)
        if found is None:
            found = _connections[key] = Connection(name, config, log_dir=log_dir)
        return found


def close_all() -> None:
    """Close every connection (stdio servers are asked to exit, then stopped); runs at interpreter exit."""
    with _lock:
        connections = list(_connections.values())
        _connections.clear()
        loop_thread = _loop_thread
    if loop_thread is None or not loop_thread.thread.is_alive():
        return
    future = asyncio.run_coroutine_threadsafe(_close_each(connections), loop_thread.loop)
    with contextlib.suppress(Exception):
        future.result(_CLOSE_TIMEOUT_S + 2)


async def _close_each(connections: list[Connection]) -> None:
    await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)


class Connection:
    """One MCP server's connection: opened on first use, reused, reopened after its server went away.

    Its coroutines run on the MCP loop (``submit``); ``starts`` counts how often the server was started or
    reached anew.
    """

    def __init__(self, name: str, config: McpServerConfig, *, log_dir: Path) -> None:
        self.name = name
        self.config = config
        self.log_path = log_dir / f"{name}.log"
        self.starts = 0
        self._client: Client | None = None
        self._holder: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._gone = asyncio.Event()
        self._opening: asyncio.Lock | None = None

    async def list_tools(self) -> list[McpTool]:
        client = await self._open()
        tools: list[McpTool] = []
        cursor: str | None = None
        for _ in range(100):  # a server whose pages never end cannot hang discovery
            try:
                page = await client.list_tools(cursor=cursor)
            except Exception as exc:
                raise self._failure(exc, "listing its tools") from None
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def call(self, tool: str, arguments: dict[str, Any], *, timeout: float,
                   meta: dict[str, Any] | None = None) -> CallToolResult:
        client = await self._open()
        try:
            return await client.call_tool(tool, arguments, read_timeout_seconds=timeout, meta=meta)  # type: ignore[arg-type]
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise ToolError(f"MCP server {self.name!r} did not answer within {timeout:g} s") from None
            raise self._failure(exc, "the call") from None
        except Exception as exc:
            raise self._failure(exc, "the call") from None

    async def close(self) -> None:
        """Close the connection (a stdio server is asked to exit, then stopped); the next call opens it again."""
        await self._drop()

    # -- machinery -------------------------------------------------------------------------------------------

    async def _open(self) -> Client:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._client is not None and not self._gone.is_set():
                return self._client
            await self._drop()
            self._closing, self._gone = asyncio.Event(), asyncio.Event()
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._holder = asyncio.create_task(self._hold(ready, self._closing, self._gone),
                                               name=f"agentmesh-mcp-{self.name}")
            self.starts += 1
            try:
                self._client = await asyncio.wait_for(asyncio.shield(ready), self.config.startup_timeout_s)
            except TimeoutError:
                await self._drop(wait=False)
                raise ToolError(f"MCP server {self.name!r} did not start within {self.config.startup_timeout_s:g} s"
                                f"{self._log_tail()}") from None
            except ToolError:
                await self._drop()
                raise
            return self._client

    async def _drop(self, *, wait: bool = True) -> None:
        """Let go of the current connection, if any: its task leaves the client, which stops a stdio server
        (``wait=False``: cancel a start-up that hangs rather than wait for it)."""
        holder, self._holder, self._client = self._holder, None, None
        self._closing.set()
        if holder is None or holder.done():
            return
        if wait:  # asyncio.wait, not wait_for: it neither cancels the holder nor raises what the holder raised
            await asyncio.wait({holder}, timeout=_CLOSE_TIMEOUT_S)
        if not holder.done():
            holder.cancel()
            await asyncio.wait({holder}, timeout=_CLOSE_TIMEOUT_S)

    async def _hold(self, ready: asyncio.Future[Client], closing: asyncio.Event, gone: asyncio.Event) -> None:
        """The connection's own task: enters the client, waits until asked to close or the server goes away."""
        try:
            async with Client(self._streams(gone.set), mode="auto", cache=None,
                              client_info=Implementation(name="agentmesh", version="1")) as client:
                if not ready.done():
                    ready.set_result(client)
                waits = [asyncio.ensure_future(closing.wait()), asyncio.ensure_future(gone.wait())]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
        except BaseException as exc:  # start-up failures go to whoever waits for `ready`; the task ends quietly
            if not ready.done():
                ready.set_exception(self._failure(exc, "start-up"))
            if not isinstance(exc, Exception | asyncio.CancelledError):
                raise
        finally:
            gone.set()

    @contextlib.asynccontextmanager
    async def _streams(self, on_end: Callable[[], None]) -> AsyncIterator[Any]:
        config = self.config
        async with contextlib.AsyncExitStack() as stack:
            if config.command:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                errlog = stack.enter_context(self.log_path.open("a", encoding="utf-8"))
                cwd = expand_path(config.cwd, server=self.name)
                params = StdioServerParameters(
                    command=expand(config.command, server=self.name),
                    args=[expand(a, server=self.name) for a in config.args],
                    env={k: expand(v.get_secret_value(), server=self.name) for k, v in config.env.items()} or None,
                    cwd=cwd)
                read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
            else:
                # The SDK's HTTP transport takes an httpx2 client (its own dependency) for headers.
                import httpx2

                headers = {k: expand(v.get_secret_value(), server=self.name) for k, v in config.headers.items()}
                http = await stack.enter_async_context(httpx2.AsyncClient(
                    headers=headers, timeout=httpx2.Timeout(_HTTP_TIMEOUT_S, read=300.0)))
                read, write = await stack.enter_async_context(
                    streamable_http_client(expand(config.url or "", server=self.name), http_client=http))
            yield _Watched(read, on_end), write

    def _failure(self, exc: BaseException, during: str) -> ToolError:
        """One line that says what happened to the server and what agentmesh does next."""
        if isinstance(exc, ToolError):
            return exc
        if isinstance(exc, AgentmeshError):  # e.g. a ${VAR} that is not set: its message says it all
            return ToolError(str(exc))
        if isinstance(exc, BaseExceptionGroup):
            leaves = exc.exceptions
            exc = leaves[0] if leaves else exc
            return self._failure(exc, during)
        if isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED or isinstance(
                exc, anyio.EndOfStream | anyio.BrokenResourceError | anyio.ClosedResourceError | ConnectionError):
            self._gone.set()
            what, then = ("exited", "starts it again") if self.config.command else ("closed the connection", "reconnects")
            return ToolError(f"MCP server {self.name!r} {what} during {during}; agentmesh {then} on the next call"
                             f"{self._log_tail()}")
        if isinstance(exc, MCPError):
            return ToolError(f"MCP server {self.name!r} answered with an error: {exc.message}")
        if isinstance(exc, FileNotFoundError | PermissionError):
            return ToolError(f"MCP server {self.name!r} could not start: {exc.strerror}: {self.config.command!r}")
        if isinstance(exc, asyncio.CancelledError):
            return ToolError(f"MCP server {self.name!r}: {during} was cancelled")
        self._gone.set()  # whatever else broke, the next call starts afresh
        text = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
        return ToolError(f"MCP server {self.name!r} failed during {during} ({detail}){self._log_tail()}")

    def _log_tail(self) -> str:
        if not self.config.command:
            return ""
        try:
            lines = [line for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                     if line.strip()]
        except OSError:
            return ""
        return f" — its last words: {lines[-1].strip()[:300]}" if lines else ""


class _Watched:
    """The server's message stream, telling the connection when it ends (the server went away)."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _Watched:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
