"""agentmesh as an MCP server: the official SDK's client starts `agentmesh mcp serve` (stdio) or connects to
`agentmesh mcp serve --http`, lists the tools, calls one (a run of its own, audited), runs a goal, reads the run
as a resource, and waits for a person's approval like any client of agentmesh."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_harness import free_port, wait_for_port

from agentmesh import Settings
from agentmesh.persistence.audit import list_calls
from agentmesh.persistence.database import get_engine

AGENTMESH = Path(sys.executable).with_name("agentmesh")
GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"


def _env(home: Path) -> dict[str, str]:
    # PREFECT_HOME stays the test session's: one local Prefect server for every process, stopped at the end.
    return {"AGENTMESH_HOME": str(home), "PREFECT_HOME": os.environ["PREFECT_HOME"], "NO_COLOR": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def _cli(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENTMESH_"))}
    return subprocess.run([str(AGENTMESH), *args], capture_output=True, text=True, cwd=cwd, timeout=180,
                          env={**env, **_env(home)})


async def _drive(client: Client, home: Path) -> None:
    """What any MCP client can do: list, call a tool, be refused, run a goal, read the run."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"get_service_metrics", "list_services", "run_goal"} <= set(tools)
    assert "scale_service" not in tools  # the serving role (analyst) may only read
    assert tools["get_service_metrics"].annotations is not None and tools["get_service_metrics"].annotations.read_only_hint
    assert tools["get_service_metrics"].input_schema["required"] == ["service"]

    metrics = await client.call_tool("get_service_metrics", {"service": "checkout-api"})

    assert not metrics.is_error, metrics.content
    body = metrics.structured_content
    assert body["status"] == "ok" and body["result"]["service"] == "checkout-api" and body["result"]["p95_ms"] > 0
    assert json.loads(metrics.content[0].text) == body  # the same JSON as text, for clients that read text
    engine = get_engine(Settings(home=home).resolved_database_url)
    (audited,) = list_calls(engine, body["run_id"])  # the call had a run of its own, and the audit has it
    assert (audited.tool, audited.agent, audited.status) == ("get_service_metrics", "analyst", "ok")
    assert audited.result == body["result"]

    invalid = await client.call_tool("get_service_metrics", {"service": "checkout-api", "replicas": 3})
    assert invalid.is_error and invalid.structured_content["status"] == "invalid"
    assert "replicas" in invalid.structured_content["error"]

    forbidden = await client.call_tool("scale_service", {"service": "checkout-api", "replicas": 12})
    assert forbidden.is_error and forbidden.structured_content["status"] == "refused"
    (attempt,) = list_calls(engine, forbidden.structured_content["run_id"])  # not listed, still audited
    assert (attempt.tool, attempt.status) == ("scale_service", "refused")
    unknown = await client.call_tool("no_such_tool", {})
    assert unknown.is_error and unknown.structured_content == {"status": "refused",
                                                               "error": "no tool 'no_such_tool'; tools/list shows them"}

    goal = await client.call_tool("run_goal", {"goal": GOAL, "approvals": "auto"})

    assert not goal.is_error, goal.content
    decided = goal.structured_content
    assert decided["status"] == "done" and decided["decision"]["summary"]
    assert decided["resource"] == f"agentmesh://runs/{decided['run_id']}"
    assert any(a["tool"] == "scale_service" for a in decided["decision"]["actions"])

    read = await client.read_resource(decided["resource"])

    run = json.loads(read.contents[0].text)
    assert (run["run_id"], run["goal"], run["status"]) == (decided["run_id"], GOAL, "done")
    assert any(c["tool"] == "scale_service" for s in run["steps"] for c in s["tool_calls"])
    listed = {r.uri for r in (await client.list_resources()).resources}
    assert {decided["resource"], f"agentmesh://runs/{body['run_id']}"} <= listed


async def test_an_mcp_client_drives_agentmesh_mcp_serve_over_stdio_and_waits_for_approval(
        home: Path, tmp_path: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "policy.toml").write_text('approval_required = ["list_services"]\n', encoding="utf-8")
    server = StdioServerParameters(command=str(AGENTMESH), args=["mcp", "serve"], env=_env(home), cwd=str(tmp_path))

    async with Client(server) as client:
        await _drive(client, home)

        paused = await client.call_tool("list_services", {})

        assert not paused.is_error
        waiting = paused.structured_content
        assert waiting["status"] == "waiting_approval" and f"agentmesh approve {waiting['run_id']}" in waiting["message"]
        approved = _cli("approve", waiting["run_id"], "--as", "ops-lead", home=home, cwd=tmp_path)
        assert approved.returncode == 0, approved.stderr
        run = json.loads((await client.read_resource(waiting["resource"])).contents[0].text)
        (call,) = [c for s in run["steps"] for c in s["tool_calls"]]
        assert (run["status"], call["status"], call["approver"]) == ("done", "ok", "ops-lead")
        assert "checkout-api" in {s["name"] for s in call["result"]["services"]}


@pytest.fixture
def http_server(home: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`agentmesh mcp serve --http` on a free port with a token: (its URL, the token)."""
    port, token = free_port(), secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENTMESH_"))}
    with (tmp_path / "mcp-serve.log").open("w") as log:
        process = subprocess.Popen([str(AGENTMESH), "mcp", "serve", "--http", "--port", str(port), "--token", token],
                                   cwd=tmp_path, env={**env, **_env(home)}, stdout=log, stderr=log)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}/mcp", token
    finally:
        process.terminate()
        process.wait(15)


async def test_an_mcp_client_drives_agentmesh_mcp_serve_over_streamable_http_with_its_token(
        home: Path, http_server: tuple[str, str]) -> None:
    url, token = http_server
    hello: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}}}
    for wrong in ({}, {"Authorization": "Bearer not-the-token"}):
        refused = httpx.post(url, json=hello, headers={"Accept": "application/json, text/event-stream", **wrong})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http, \
            Client(streamable_http_client(url, http_client=http)) as client:
        await _drive(client, home)


def test_mcp_serve_over_http_on_another_address_needs_a_token(home: Path, tmp_path: Path) -> None:
    done = _cli("mcp", "serve", "--http", "--host", "0.0.0.0", "--port", str(free_port()), home=home, cwd=tmp_path)

    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "set a token (--token or AGENTMESH_API_TOKEN)" in done.stderr.strip().splitlines()[-1]
