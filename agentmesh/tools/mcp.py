"""MCP servers as a source of tools: each tool of a configured server is an ordinary agentmesh ``Tool``.

The servers are the ``[mcp.servers.NAME]`` tables of ``agentmesh.toml`` (``agentmesh.core.mcp_config``). Their
tools join the registry beside the built-in and user tools, and every call passes the same gateway — arguments
validated against the server's input schema, role, policy, approval, idempotency key, timeout, audit — because
an MCP tool is nothing but a ``Tool`` whose ``args_model`` checks the server's JSON schema and whose function
forwards the call to the server over a connection the process reuses (``agentmesh.tools._mcp_pool``).

- **Names.** A tool is named ``SERVER__TOOL`` (``time__get_current_time``): unique whatever other servers or
  tools exist, stable when a new built-in tool arrives, and a valid OpenAI function name — characters other than
  letters, digits, ``_`` and ``-`` become ``_``, and a name over 64 characters is cut and given a hash suffix.
  The policy names MCP tools the same way (``approval_required = ["tracker__delete_issue"]``).
- **Risk.** From the tool's annotations, which are hints: ``readOnlyHint`` → read, ``destructiveHint`` →
  destructive (which needs approval by default), anything else → write. The policy's ``[risk]`` table
  overrides per tool. Roles follow the risk as for a decorated tool (read: analyst, optimizer, innovator; write
  and destructive: optimizer) unless the policy's ``[roles]`` say otherwise.
- **Results.** Structured content when the server gives it, else the text (image and other blocks are
  described, not inlined); a result the server marks as an error is a failed call with its text as the reason.
  The gateway hands either to the model as data, exactly like a built-in tool's result.
- **Failures.** A server that does not start, exits, stops answering or times out fails that call, audited,
  with one line saying so; the next call starts it again (or reconnects to it). A call has the server's ``timeout_s`` (default: the
  settings' ``tool_timeout_s``) to be answered once the server is up, which has ``startup_timeout_s`` to start. A server that cannot be reached when the registry is
  built keeps the tools it listed last time (cached under ``$AGENTMESH_HOME/mcp``), so calls to them fail
  clearly instead of vanishing; with no such listing its tools are missing and ``agentmesh doctor`` says why.

    tools = mcp_tools(settings, risk=policy.risk)        # the composition root does this once per process
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from mcp.types import CallToolResult, TextContent
from mcp.types import Tool as McpTool
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from agentmesh.core.exceptions import ToolError
from agentmesh.tools import DEFAULT_ROLES, Risk, Tool, ToolContext
from agentmesh.tools._mcp_pool import Connection, connection, run_sync, submit

if TYPE_CHECKING:
    from agentmesh.core.mcp_config import McpServerConfig
    from agentmesh.core.settings import Settings

__all__ = ["ServerReport", "check_servers", "mcp_tools", "risk_of", "tool_name"]

log = logging.getLogger("agentmesh.mcp")

MAX_NAME = 64
_INVALID = re.compile(r"[^A-Za-z0-9_-]")
_CONTEXT = "_agentmesh_context"
_MAX_TEXT = 10_000


def tool_name(server: str, tool: str) -> str:
    """The agentmesh name of an MCP server's tool: ``SERVER__TOOL``, a valid OpenAI function name."""
    name = f"{server}__{_INVALID.sub('_', tool)}"
    if len(name) > MAX_NAME:
        name = f"{name[:MAX_NAME - 9]}_{hashlib.sha1(tool.encode()).hexdigest()[:8]}"
    return name


def risk_of(tool: McpTool) -> Risk:
    """read, write or destructive, from the tool's annotations (hints); ``write`` when it says nothing."""
    hints = tool.annotations
    if hints is not None and hints.read_only_hint:
        return "read"
    if hints is not None and hints.destructive_hint:
        return "destructive"
    return "write"


def mcp_tools(settings: Settings, *, risk: Mapping[str, str] | None = None) -> list[Tool]:
    """The tools of every configured server, as agentmesh tools (servers are started or reached now)."""
    servers = settings.mcp.servers
    if not servers:
        return []
    folder = settings.resolved_home / "mcp"
    listings = _discover({name: connection(name, config, log_dir=folder) for name, config in servers.items()})
    tools: list[Tool] = []
    for name, found in listings.items():
        if isinstance(found, BaseException):
            cached = _cached_listing(folder, name)
            log.warning("%s; %s", found, f"its {len(cached)} tools from the last listing are offered, and calls to "
                        "them try to reach it again" if cached else "none of its tools are offered")
            if not cached:
                continue
            found = cached
        else:
            _save_listing(folder, name, found)
        config = servers[name]
        conn = connection(name, config, log_dir=folder)
        seen: dict[str, str] = {}
        for listed in found:
            made = _tool(name, listed, config=config, conn=conn, risk=risk or {},
                         default_timeout=settings.tool_timeout_s)
            if made is None:
                continue
            if made.name in seen:
                log.warning("MCP server %r: tools %r and %r are both named %s; the second is not offered",
                            name, seen[made.name], listed.name, made.name)
                continue
            seen[made.name] = listed.name
            tools.append(made)
    return tools


@dataclass(kw_only=True)
class ServerReport:
    """What `agentmesh doctor` says about one configured server."""

    name: str
    """The server's name in agentmesh.toml."""
    ok: bool
    """It started (or answered) and listed its tools."""
    detail: str
    """What was found, in one line."""


def check_servers(settings: Settings) -> list[ServerReport]:
    """Reach every configured server and list its tools, each with how long it took."""
    folder = settings.resolved_home / "mcp"
    reports = []
    for name, config in settings.mcp.servers.items():
        started = time.perf_counter()
        found = _discover({name: connection(name, config, log_dir=folder)})[name]
        took = time.perf_counter() - started
        if isinstance(found, BaseException):
            reports.append(ServerReport(name=name, ok=False, detail=str(found)))
            continue
        names = ", ".join(tool_name(name, t.name) for t in found[:6]) + (", …" if len(found) > 6 else "")
        reports.append(ServerReport(name=name, ok=True, detail=f"{config.transport} {config.where()}: "
                                    f"{len(found)} tools in {took:.1f} s ({names or 'none'})"))
    return reports


# -- one tool ------------------------------------------------------------------------------------------------


def _tool(server: str, listed: McpTool, *, config: McpServerConfig, conn: Connection, risk: Mapping[str, str],
          default_timeout: float) -> Tool | None:
    name = tool_name(server, listed.name)
    try:
        args_model = _arguments_model(name, listed.input_schema)
    except SchemaError as exc:
        log.warning("MCP server %r: tool %r has an invalid input schema (%s); it is not offered", server,
                    listed.name, exc.message)
        return None
    level: Risk = risk.get(name) or risk_of(listed)  # type: ignore[assignment]
    hints = listed.annotations
    # The call has its timeout once the server is up; (re)starting the server has its own. The gateway's bound on
    # the whole call is their sum, so a restart after a crash does not eat the call's time.
    timeout = config.timeout_s or default_timeout
    remote = listed.name

    async def forward(**arguments: Any) -> Any:
        ctx: ToolContext | None = arguments.pop(_CONTEXT, None)
        # The idempotency key travels with the call, for servers that can use it (MCP has no field for it).
        meta = {"agentmesh/idempotencyKey": ctx.idempotency_key, "agentmesh/runId": ctx.run_id} if ctx else None
        result = await asyncio.wrap_future(submit(conn.call(remote, arguments, timeout=timeout, meta=meta)))
        return _output(result)

    forward.__name__ = name
    return Tool(
        name=name,
        description=(listed.description or listed.title or f"{listed.name} (MCP server {server})").strip(),
        function=forward,
        args_model=args_model,
        risk=level,
        roles=DEFAULT_ROLES[level],
        idempotent=level == "read" or bool(hints and hints.idempotent_hint),
        requires_approval=level == "destructive",
        timeout_s=timeout + config.startup_timeout_s,
        context_param=_CONTEXT,
        source=f"MCP server {server!r} ({config.where()})",
        server=server,
    )


def _arguments_model(name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model that validates arguments with the server's own JSON schema and shows that schema.

    An argument the schema does not name is refused, as for a Python tool, unless the schema says
    ``additionalProperties`` itself.
    """
    checked = dict(schema)
    if "additionalProperties" not in checked and checked.get("type", "object") == "object":
        checked["additionalProperties"] = False
    validator_class = validator_for(checked, default=Draft202012Validator)
    validator_class.check_schema(checked)
    validator = validator_class(checked)
    shown = json.dumps(checked)

    class Arguments(BaseModel):
        model_config = ConfigDict(extra="allow", title=f"{name}_args")

        @model_validator(mode="before")
        @classmethod
        def _matches_schema(cls, data: Any) -> Any:
            errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])[:5]
            if errors:
                problems = "; ".join(
                    (".".join(str(p) for p in e.absolute_path) + ": " if e.absolute_path else "") + e.message
                    for e in errors)
                raise PydanticCustomError("mcp_schema", "{problems}", {"problems": problems})
            return data

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
            return json.loads(shown)  # type: ignore[no-any-return]

    Arguments.__name__ = Arguments.__qualname__ = f"{name}_args"
    return Arguments


def _output(result: CallToolResult) -> Any:
    """The result as data for the model: structured content, else the text; an error result raises."""
    blocks = [_block(b) for b in result.content]
    text = "\n".join(b["text"] for b in blocks if b.get("type") == "text")
    if result.is_error:
        raise ToolError(text.strip() or "the MCP tool reported an error and said nothing more")
    if result.structured_content is not None:
        return result.structured_content
    if all(b.get("type") == "text" for b in blocks):
        return {"text": _cut(text)}
    return {"content": blocks}


def _block(block: Any) -> dict[str, Any]:
    if isinstance(block, TextContent):
        return {"type": "text", "text": _cut(block.text)}
    kind = getattr(block, "type", type(block).__name__)
    if kind in ("image", "audio"):
        return {"type": kind, "mime_type": block.mime_type, "note": f"{len(block.data) * 3 // 4} bytes, not shown"}
    if kind == "resource_link":
        return {"type": kind, "uri": str(block.uri), "name": block.name}
    if kind == "resource":
        inner = block.resource
        body = {"text": _cut(inner.text)} if hasattr(inner, "text") else {"note": "binary, not shown"}
        return {"type": kind, "uri": str(inner.uri), **body}
    return {"type": str(kind), "note": "content of this kind is not shown"}


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else f"{text[:_MAX_TEXT]}[… {len(text) - _MAX_TEXT} more characters cut]"


# -- discovery -----------------------------------------------------------------------------------------------


def _discover(connections: dict[str, Connection]) -> dict[str, list[McpTool] | BaseException]:
    """Every server's tools, listed at once on the MCP loop; a server that fails gives its error instead."""

    async def one(conn: Connection) -> list[McpTool]:
        try:
            return await asyncio.wait_for(conn.list_tools(), conn.config.startup_timeout_s * 2)
        except TimeoutError:
            raise ToolError(f"MCP server {conn.name!r} did not list its tools within "
                            f"{conn.config.startup_timeout_s * 2:g} s") from None

    async def every() -> list[list[McpTool] | BaseException]:
        return await asyncio.gather(*(one(c) for c in connections.values()), return_exceptions=True)

    longest = max(c.config.startup_timeout_s for c in connections.values())
    return dict(zip(connections, run_sync(every(), longest * 2 + 10), strict=True))


def _listing_file(folder: Path, server: str) -> Path:
    return folder / f"{server}.tools.json"


def _save_listing(folder: Path, server: str, tools: list[McpTool]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _listing_file(folder, server).write_text(json.dumps(
            [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]), encoding="utf-8")
    except OSError as exc:  # a cache: the tools work without it
        log.warning("could not cache the tool listing of MCP server %r: %s", server, exc)


def _cached_listing(folder: Path, server: str) -> list[McpTool]:
    try:
        return [McpTool.model_validate(t) for t in json.loads(_listing_file(folder, server).read_text("utf-8"))]
    except (OSError, ValueError):
        return []
