"""MCP servers' tools in agentmesh: real servers (the reference time server over stdio, the flaky test server over
stdio and over streamable HTTP), every call through the gateway, the audit, approvals, and failures that end one
call — never the goal."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from mcp_harness import TIME_SERVER, MeshScript, flaky_stdio, received

from agentmesh import Settings, arun_goal
from agentmesh.persistence.audit import ToolCallRecord, list_calls
from agentmesh.runtime.components import components
from agentmesh.runtime.graphs import get_graph

AGENTMESH = Path(sys.executable).with_name("agentmesh")


def _goal(tool: str, role: str, **arguments: Any) -> str:
    """The goal of a one-call run on the bundled tool_call graph (a step that calls one tool)."""
    return str(get_graph("tool_call").module.goal_for(tool, role, arguments))


def _calls(settings: Settings, run_id: str, tool: str) -> list[ToolCallRecord]:
    return [c for c in list_calls(components(settings).engine, run_id) if c.tool == tool]


def _seconds(call: ToolCallRecord) -> float:
    assert call.ended is not None
    return (call.ended - call.started).total_seconds()


async def _limit(name: str) -> int:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return int((await client.read_global_concurrency_limit_by_name(name)).limit)


def _toml(tmp_path: Path, text: str) -> None:
    (tmp_path / "agentmesh.toml").write_text(text, encoding="utf-8")


def _cli(*args: str, cwd: Path, home: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENTMESH_"))}
    env.update({"AGENTMESH_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run([str(AGENTMESH), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


async def test_a_mesh_goal_calls_the_time_server_through_the_gateway_and_the_audit_has_the_result(home: Path) -> None:
    settings = Settings(model="offline", node_retries=0, mcp={"servers": {"time": TIME_SERVER}})
    script = MeshScript(steps={"analyst": [
        ("time__get_current_time", {"timezone": "UTC"}),
        ("time__get_current_time", {"timezone": 5}),                       # the server's schema says string
        ("time__get_current_time", {"timezone": "UTC", "format": "iso"}),  # an argument the schema does not name
        ("time__get_current_time", {"timezone": "Nowhere/Atlantis"}),      # the server answers with an error
    ]})

    result = await arun_goal("What time is it in UTC?", settings=settings, chat_model=script.model())

    assert result["status"] == "done", result["error"]
    assert "time__get_current_time" in script.offered["analyst"]  # offered to the model like any read tool
    ok, wrong_type, extra, refused_by_server = _calls(settings, result["run_id"], "time__get_current_time")
    assert (ok.status, ok.agent, ok.risk, ok.args) == ("ok", "analyst", "read", {"timezone": "UTC"})
    assert ok.result["timezone"] == "UTC"
    datetime.fromisoformat(ok.result["datetime"])  # the server's structured content, as data
    assert wrong_type.status == "invalid" and "timezone: 5 is not of type 'string'" in wrong_type.reason
    assert extra.status == "invalid" and "'format' was unexpected" in extra.reason
    assert refused_by_server.status == "failed" and "Nowhere/Atlantis" in refused_by_server.reason
    step = next(s for s in result["steps"] if any(c["tool"] == "time__get_current_time" for c in s["tool_calls"]))
    assert step["agent"] == "analyst" and step["prefect_task_run_id"]


async def test_a_streamable_http_server_gets_its_header_token_and_one_connection_serves_every_loop(
        home: Path, flaky_http: tuple[str, str], calls: Path, monkeypatch: Any) -> None:
    url, token = flaky_http
    monkeypatch.setenv("FLAKY_SECRET", token)
    home.mkdir(parents=True, exist_ok=True)  # at most one echo at a time, across processes (a Prefect limit)
    (home / "policy.toml").write_text("[concurrency]\nflaky__echo = 1\n", encoding="utf-8")
    settings = Settings(model="offline", node_retries=0, mcp={"servers": {"flaky": {
        "url": url, "headers": {"Authorization": "Bearer ${FLAKY_SECRET}"}}}})

    result = await arun_goal(_goal("flaky__echo", "analyst", text="over http"), graph="tool_call", settings=settings)

    assert result["status"] == "done", result["error"]
    (call,) = _calls(settings, result["run_id"], "flaky__echo")
    assert call.status == "ok" and call.result["echo"] == "over http"
    refused = await arun_goal(_goal("flaky__note", "analyst", text="not yours"), graph="tool_call", settings=settings)
    (note,) = _calls(settings, refused["run_id"], "flaky__note")
    assert note.status == "refused" and note.reason == "policy does not let the analyst call flaky__note"
    assert [c["tool"] for c in received(calls)] == ["echo"]  # the refused call never reached the server
    assert await _limit("agentmesh-tool-flaky__echo") == 1
    # The connection lives on agentmesh's MCP loop: a call from another event loop (another thread's
    # asyncio.run, as each CLI command is) uses the same session.
    echo = components(settings).registry.get("flaky__echo")
    here = await echo.function(text="here")
    elsewhere = await asyncio.to_thread(lambda: asyncio.run(echo.function(text="elsewhere")))
    assert here == {"echo": "here", "pid": call.result["pid"]} and elsewhere["pid"] == call.result["pid"]
    assert await components(settings).registry.get("flaky__shout").function(text="plain") == {"text": "PLAIN"}
    assert "Bearer ${FLAKY_SECRET}" not in json.dumps(settings.masked())  # headers are secrets in `config`


async def test_a_server_that_crashes_or_hangs_mid_call_fails_that_call_within_its_timeout_and_the_goal_goes_on(
        home: Path, calls: Path) -> None:
    settings = Settings(model="offline", node_retries=0, mcp={"servers": {"flaky": flaky_stdio(timeout_s=2)}})
    script = MeshScript(steps={"analyst": [
        ("flaky__nap", {"seconds": 60}),     # hangs past its 2 s
        ("flaky__crash", {}),                # the server's process exits mid-call
        ("flaky__echo", {"text": "back"}),   # the next call starts the server again
    ]})

    result = await arun_goal("Exercise the flaky server", settings=settings, chat_model=script.model())

    assert result["status"] == "done", result["error"]
    (nap,) = _calls(settings, result["run_id"], "flaky__nap")
    (crash,) = _calls(settings, result["run_id"], "flaky__crash")
    (echo,) = _calls(settings, result["run_id"], "flaky__echo")
    assert nap.status == "failed" and nap.reason == "MCP server 'flaky' did not answer within 2 s" and _seconds(nap) < 4
    assert crash.status == "failed" and "exited during the call" in crash.reason and _seconds(crash) < 2
    assert echo.status == "ok" and echo.result["echo"] == "back"
    first, restarted = {c["pid"] for c in received(calls) if c["tool"] in ("nap", "crash")}, echo.result["pid"]
    assert len(first) == 1 and restarted not in first  # one server until the crash, a new one after it
    assert result["decision"]["summary"] == "scripted decision"


async def test_a_server_that_cannot_start_keeps_its_last_listing_and_each_call_fails_clearly(
        home: Path, calls: Path) -> None:
    from agentmesh.tools import _mcp_pool

    working = Settings(model="offline", node_retries=0, mcp={"servers": {"flaky": flaky_stdio()}})
    assert "flaky__echo" in components(working).registry  # listed once: the listing is kept in the home
    _mcp_pool.close_all()
    broken = Settings(model="offline", node_retries=0, mcp={"servers": {"flaky": flaky_stdio(
        command=str(home / "no-such-python"))}})

    assert components(broken).registry.get("flaky__echo").server == "flaky"
    result = await arun_goal(_goal("flaky__echo", "analyst", text="anyone?"), graph="tool_call", settings=broken)

    assert result["status"] == "done" and result["decision"]["outcome"] == "not_achieved"
    (call,) = _calls(broken, result["run_id"], "flaky__echo")
    assert call.status == "failed"
    assert call.reason.startswith("MCP server 'flaky' could not start: No such file or directory")
    assert received(calls) == []


def test_an_mcp_tool_in_approval_required_pauses_the_run_until_agentmesh_approve(
        home: Path, tmp_path: Path, calls: Path) -> None:
    _toml(tmp_path, f"""
[mcp.servers.flaky]
command = {json.dumps(sys.executable)}
args = [{json.dumps(str(Path(__file__).with_name("flaky_server.py")))}, "stdio"]
env = {{ FLAKY_CALLS = "${{FLAKY_CALLS}}" }}
""")
    home.mkdir(parents=True, exist_ok=True)
    (home / "policy.toml").write_text('approval_required = ["flaky__note"]\n', encoding="utf-8")

    paused = _cli("run", "--graph", "tool_call", "--json", _goal("flaky__note", "optimizer", text="ship it"),
                  cwd=tmp_path, home=home)

    assert paused.returncode == 0, paused.stderr
    run = json.loads(paused.stdout)
    assert run["status"] == "waiting_approval"
    (pending,) = run["pending_approvals"]
    assert pending["tool"] == "flaky__note" and pending["args"] == {"text": "ship it"}
    assert received(calls) == []  # nothing reached the server before a person said yes

    approved = _cli("approve", run["run_id"], "--as", "ops-lead", "--json", cwd=tmp_path, home=home)

    assert approved.returncode == 0, approved.stderr
    done = json.loads(approved.stdout)
    assert done["status"] == "done"
    (call,) = [c for s in done["steps"] for c in s["tool_calls"]]
    assert (call["status"], call["result"], call["approver"]) == ("ok", {"result": "noted"}, "ops-lead")
    assert [(c["tool"], c["text"]) for c in received(calls)] == [("note", "ship it")]


def test_tools_and_doctor_show_each_server_its_risks_roles_and_policy_overrides(home: Path, tmp_path: Path) -> None:
    _toml(tmp_path, f"""
[mcp.servers.time]
command = {json.dumps(sys.executable)}
args = ["-m", "mcp_server_time", "--local-timezone", "UTC"]

[mcp.servers.flaky]
command = {json.dumps(sys.executable)}
args = [{json.dumps(str(Path(__file__).with_name("flaky_server.py")))}, "stdio"]

[mcp.servers.gone]
command = "agentmesh-no-such-mcp-server"
""")
    home.mkdir(parents=True, exist_ok=True)
    (home / "policy.toml").write_text('[risk]\nflaky__note = "read"\n[roles]\nanalyst = ["flaky__echo"]\n',
                                      encoding="utf-8")

    listed = _cli("tools", "--json", cwd=tmp_path, home=home)

    assert listed.returncode == 0, listed.stderr
    tools = {t["name"]: t for t in json.loads(listed.stdout)}
    assert tools["get_service_metrics"]["server"] is None  # the built-in tools are still there
    clock = tools["time__get_current_time"]
    assert (clock["server"], clock["risk"], clock["roles"]) == ("time", "read", ["analyst", "innovator", "optimizer"])
    assert clock["parameters"]["required"] == ["timezone"]
    assert (tools["flaky__erase"]["risk"], tools["flaky__erase"]["requires_approval"]) == ("destructive", True)
    assert tools["flaky__erase"]["roles"] == ["optimizer"]
    assert tools["flaky__note"]["risk"] == "read"  # the policy's [risk] over the server's silence (write)
    assert tools["flaky__echo"]["roles"] == ["analyst"]  # the policy's [roles]
    assert not any(name.startswith("gone__") for name in tools)
    assert "MCP server 'gone' could not start" in listed.stderr

    doctor = _cli("doctor", "--json", cwd=tmp_path, home=home)

    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 1
    assert checks["mcp:time"]["ok"] and "2 tools" in checks["mcp:time"]["detail"]
    assert checks["mcp:flaky"]["ok"] and "flaky__echo" in checks["mcp:flaky"]["detail"]
    assert not checks["mcp:gone"]["ok"] and "could not start" in checks["mcp:gone"]["detail"]
    assert "mcp.servers.gone table" in checks["mcp:gone"]["fix"] and "gone.log" in checks["mcp:gone"]["fix"]
