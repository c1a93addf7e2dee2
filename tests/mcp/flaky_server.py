"""A real MCP server for the tests, built with the official SDK: tools that answer, sleep, crash and destroy.

    python flaky_server.py stdio
    python flaky_server.py http PORT        # streamable HTTP at /mcp; needs `Authorization: Bearer $FLAKY_TOKEN`

Every call it receives is appended to the file named by ``FLAKY_CALLS`` (one JSON line each), so a test can tell
what reached the server and what did not.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("flaky")
READ = ToolAnnotations(read_only_hint=True)


def _record(tool: str, **arguments: object) -> None:
    path = os.environ.get("FLAKY_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"tool": tool, "pid": os.getpid(), **arguments}) + "\n")


@server.tool(annotations=READ)
def echo(text: str) -> dict[str, object]:
    """Say the text back, with the server's process id."""
    _record("echo", text=text)
    return {"echo": text, "pid": os.getpid()}


@server.tool(annotations=READ, structured_output=False)
def shout(text: str) -> str:
    """Say the text back in capitals, as plain text (no structured content)."""
    _record("shout", text=text)
    return text.upper()


@server.tool(annotations=READ)
def crash() -> str:
    """Exit the server's process in the middle of the call."""
    _record("crash")
    sys.stdout.flush()
    os._exit(3)


@server.tool(annotations=READ)
async def nap(seconds: float) -> str:
    """Sleep, then answer (the server goes on answering other calls meanwhile)."""
    _record("nap", seconds=seconds)
    await anyio.sleep(seconds)
    return "rested"


@server.tool()
def note(text: str) -> str:
    """Write a note (the server says nothing about this tool's risk)."""
    _record("note", text=text)
    return "noted"


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def erase(name: str) -> str:
    """Erase a thing for good."""
    _record("erase", name=name)
    return f"erased {name}"


@server.tool(annotations=READ)
def fail(reason: str) -> str:
    """Fail with the reason given."""
    _record("fail", reason=reason)
    raise ToolError(reason)


def _http(port: int) -> None:
    import uvicorn

    app = server.streamable_http_app()
    token = os.environ["FLAKY_TOKEN"].encode()

    async def guarded(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != b"Bearer " + token:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"no token"})
            return
        await app(scope, receive, send)

    uvicorn.run(guarded, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    if sys.argv[1] == "http":
        _http(int(sys.argv[2]))
    else:
        server.run("stdio")
