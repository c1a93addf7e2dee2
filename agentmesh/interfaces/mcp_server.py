"""agentmesh as an MCP server (``agentmesh mcp serve``): any MCP client can call its tools and run goals.

- **Tools.** Every tool of the registry that the serving role may call (``--role``, default ``analyst``, which
  the default policy gives read-only tools; ``--role optimizer`` lets clients act). Each call is a run of its
  own on the bundled ``tool_call`` graph: through the gateway, audited, and paused for approval like any call —
  the client gets ``waiting_approval`` with the run id, `agentmesh approve RUN_ID` runs the call, and the run
  resource then holds its result. Plus ``run_goal`` (``goal``, ``graph``, ``approvals``) → the decision, run id
  and status of a whole goal, which the team of agents works on under the policy as always.
- **Resources.** ``agentmesh://runs/RUN_ID``: a run's JSON (as `agentmesh runs show --json`); the latest runs
  are listed.
- **Transports.** stdio (``serve_stdio``), or streamable HTTP at ``/mcp`` (``http_app``) with the rule of
  `agentmesh serve`: a token (``--token`` or ``AGENTMESH_API_TOKEN``) is sent as ``Authorization: Bearer``, and a
  host other than loopback needs one.

Built on the official SDK's low-level ``Server``: the registry's tools arrive with JSON schemas already, so there
is no function signature for a decorator to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    TextContent,
    TextResourceContents,
    ToolAnnotations,
)
from mcp.types import Tool as McpTool

from agentmesh.core.exceptions import AgentmeshError, NotFoundError
from agentmesh.core.settings import Settings
from agentmesh.tools import Tool

__all__ = ["RUN_GOAL", "RUN_URI", "create_server", "http_app", "serve_stdio"]

log = logging.getLogger("agentmesh.interfaces")

RUN_GOAL = "run_goal"
RUN_URI = "agentmesh://runs/{run_id}"
TOOL_CALL_GRAPH = "tool_call"
_LISTED_RUNS = 30

_RUN_GOAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "goal": {"type": "string", "minLength": 1, "maxLength": 4000,
                 "description": "What you want done, in your own words."},
        "graph": {"type": "string", "description": "The graph to run (default: the server's, usually mesh)."},
        "approvals": {"type": "string", "enum": ["wait", "auto", "deny"],
                      "description": "Calls that need approval: wait for a person (default), approve what the "
                                     "policy allows, or reject."},
    },
    "required": ["goal"],
    "additionalProperties": False,
}


def create_server(settings: Settings, *, role: str = "analyst") -> Server[Any]:
    """The MCP server: the tools ``role`` may call, ``run_goal``, and the runs as resources."""
    from importlib.metadata import version

    warm: asyncio.Future[Any] | None = None

    async def parts() -> Any:
        """The installation's components, built once, off the event loop (the first also readies Prefect)."""
        nonlocal warm
        if warm is None:
            warm = asyncio.ensure_future(asyncio.to_thread(_components, settings))
        return await asyncio.shield(warm)

    with contextlib.suppress(RuntimeError):  # on a running loop (stdio): start now, while the client connects
        asyncio.get_running_loop()
        warm = asyncio.ensure_future(asyncio.to_thread(_components, settings))

    async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
        found = await parts()
        offered = [_described(t) for t in sorted(found.registry, key=lambda t: t.name)
                   if role in found.policy.allowed_roles(t)]
        run_goal = McpTool(name=RUN_GOAL, input_schema=_RUN_GOAL_SCHEMA,
                           description="Run a goal with agentmesh's team of agents (plan, investigate, act within "
                                       "policy, decide); returns the decision, the run id and its status.",
                           annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                                       open_world_hint=True))
        return ListToolsResult(tools=[*offered, run_goal])

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        found = await parts()
        arguments = dict(params.arguments or {})
        try:
            if params.name == RUN_GOAL:
                return _result(await _run_goal(settings, arguments))
            if params.name not in found.registry:  # nothing to audit: no run for a name that is no tool
                return _result({"status": "refused", "error": f"no tool {params.name!r}; tools/list shows them"})
            # A tool the role may not call is not listed; a client that calls it anyway is refused by the gateway,
            # and the attempt is audited like any other.
            return _result(await _call(settings, params.name, role, arguments))
        except AgentmeshError as exc:  # a bad goal or graph, an unknown run: the client hears why, in one line
            return _result({"status": "refused", "error": _one_line(exc)})

    async def list_resources(ctx: ServerRequestContext[Any],
                             params: PaginatedRequestParams | None) -> ListResourcesResult:
        from agentmesh.persistence.runs import runs_listing

        engine = (await parts()).engine
        rows = await asyncio.to_thread(runs_listing, engine, limit=_LISTED_RUNS)
        return ListResourcesResult(resources=[
            Resource(uri=RUN_URI.format(run_id=r["run_id"]), name=f"run {r['run_id'][:8]}",
                     description=f"{r['status']}: {r['goal'][:160]}", mime_type="application/json")
            for r in rows])

    async def list_templates(ctx: ServerRequestContext[Any],
                             params: PaginatedRequestParams | None) -> ListResourceTemplatesResult:
        return ListResourceTemplatesResult(resource_templates=[ResourceTemplate(
            uri_template=RUN_URI, name="run", mime_type="application/json",
            description="A run's JSON: goal, status, decision, steps with their tool calls, pending approvals.")])

    async def read_resource(ctx: ServerRequestContext[Any], params: ReadResourceRequestParams) -> ReadResourceResult:
        from agentmesh.persistence.runs import run_result

        uri = str(params.uri)
        prefix = RUN_URI.split("{", 1)[0]
        if not uri.startswith(prefix) or not uri[len(prefix):]:
            raise MCPError(INVALID_PARAMS, f"no resource {uri!r}; runs are {RUN_URI}")
        engine = (await parts()).engine
        try:
            run = await asyncio.to_thread(run_result, engine, uri[len(prefix):])
        except NotFoundError as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from None
        return ReadResourceResult(contents=[TextResourceContents(
            uri=uri, mime_type="application/json", text=json.dumps(run, default=str, ensure_ascii=False))])

    return Server(
        "agentmesh", version=version("agentmesh"),
        instructions="agentmesh: a team of LLM agents acting through audited tools within a policy. Call its tools "
                     "(each call is an audited run; some wait for a person's approval), or run_goal for a whole "
                     f"goal; read a run at {RUN_URI}.",
        on_list_tools=list_tools, on_call_tool=call_tool, on_list_resources=list_resources,
        on_list_resource_templates=list_templates, on_read_resource=read_resource,
    )


async def serve_stdio(settings: Settings, *, role: str = "analyst") -> None:
    """Serve over this process's stdin and stdout until the client closes them."""
    server = create_server(settings, role=role)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def http_app(settings: Settings, *, role: str = "analyst", token: str | None = None,
             host: str = "127.0.0.1") -> Callable[..., Awaitable[None]]:
    """The streamable HTTP app (endpoint ``/mcp``), behind the bearer token when one is given."""
    app = create_server(settings, role=role).streamable_http_app(host=host)
    return app if token is None else _BearerToken(app, token)


# -- what a call does -----------------------------------------------------------------------------------------


async def _call(settings: Settings, name: str, role: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One registry tool called through the gateway, under a run of its own on the tool_call graph."""
    from agentmesh.runtime.graphs import get_graph
    from agentmesh.runtime.run import arun_goal

    goal = get_graph(TOOL_CALL_GRAPH, settings.graphs_paths).module.goal_for(name, role, arguments)
    run = await arun_goal(goal, graph=TOOL_CALL_GRAPH, settings=settings)
    calls = [c for step in run["steps"] for c in step["tool_calls"]]
    answer: dict[str, Any] = {"run_id": run["run_id"], "resource": RUN_URI.format(run_id=run["run_id"])}
    if run["status"] == "waiting_approval":
        return {"status": "waiting_approval", **answer,
                "message": f"{name} waits for a person's approval: agentmesh approve {run['run_id']} "
                           f"(or --reject); then read {answer['resource']} for its result"}
    if not calls:
        return {"status": "failed", **answer, "error": run["error"] or "the call was not made"}
    call = calls[-1]
    if call["status"] == "ok":
        return {"status": "ok", **answer, "result": call["result"]}
    return {"status": call["status"], **answer, "error": call["reason"]}


async def _run_goal(settings: Settings, arguments: dict[str, Any]) -> dict[str, Any]:
    from agentmesh.runtime.run import arun_goal

    unknown = set(arguments) - set(_RUN_GOAL_SCHEMA["properties"])
    if unknown or not isinstance(arguments.get("goal"), str):
        return {"status": "invalid", "error": f"run_goal takes goal (text), graph and approvals; got {sorted(arguments)}"}
    if arguments.get("graph") == TOOL_CALL_GRAPH:  # it would let a client pick any role; its tools are listed
        return {"status": "refused", "error": "call the tools directly rather than through the tool_call graph"}
    run = await arun_goal(arguments["goal"], graph=arguments.get("graph"), settings=settings,
                          approvals=arguments.get("approvals"))
    return {"status": run["status"], "run_id": run["run_id"], "resource": RUN_URI.format(run_id=run["run_id"]),
            "decision": run["decision"], "error": run["error"], "pending_approvals": run["pending_approvals"]}


def _result(payload: dict[str, Any]) -> CallToolResult:
    """The answer as structured content and the same JSON as text; refused, failed and the like are errors."""
    failed = payload["status"] not in ("ok", "done", "waiting_approval")
    text = json.dumps(payload, default=str, ensure_ascii=False)
    return CallToolResult(content=[TextContent(text=text)], structured_content=json.loads(text), is_error=failed)


def _described(tool: Tool) -> McpTool:
    return McpTool(
        name=tool.name, description=tool.description, input_schema=tool.parameters_schema(),
        annotations=ToolAnnotations(read_only_hint=tool.risk == "read", destructive_hint=tool.risk == "destructive",
                                    idempotent_hint=tool.idempotent))


def _components(settings: Settings) -> Any:
    from agentmesh.runtime.components import components
    from agentmesh.runtime.prefect import configure_prefect

    configure_prefect(settings)
    return components(settings)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _BearerToken:
    """Refuses every HTTP request without ``Authorization: Bearer <token>`` (compared in constant time)."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, credentials = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), self.token):
                body = json.dumps({"error": {"message": "missing or wrong API token: send `Authorization: Bearer "
                                             "<token>`", "type": "invalid_request_error", "code": "unauthorized"}})
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)
