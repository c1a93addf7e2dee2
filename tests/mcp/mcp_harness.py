"""Helpers for the MCP tests: the servers' tables, a scripted mesh whose workers call given tools, the calls a
test server received, and a local port to wait for.

Every server here is real: ``mcp-server-time`` (the reference time server) and ``flaky_server.py`` (built with the
official SDK), started as child processes over stdio or as an HTTP server by the test.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage

from agentmesh.testing.scripted import ScriptedCall, ScriptedChatModel

FLAKY = Path(__file__).with_name("flaky_server.py")

TIME_SERVER = {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}
"""The reference time server over stdio, as a `[mcp.servers.time]` table would say."""


def flaky_stdio(**more: Any) -> dict[str, Any]:
    """The flaky server over stdio; it appends its calls to the file FLAKY_CALLS names (passed on through `env`
    with ${VAR}: a stdio server gets only the variables its table gives, besides PATH, HOME and the like)."""
    return {"command": sys.executable, "args": [str(FLAKY), "stdio"], "env": {"FLAKY_CALLS": "${FLAKY_CALLS}"},
            **more}


def received(calls: Path) -> list[dict[str, Any]]:
    """The calls the flaky server received, in order."""
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 60) -> None:
    give_up = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.1)


@dataclass(kw_only=True)
class MeshScript:
    """Plays the mesh: the strategist plans one step per worker given, each worker makes its tool calls (one per
    model turn) and submits a finding, and the strategist decides. Records what each worker was offered."""

    steps: dict[str, list[tuple[str, dict[str, Any]]]]
    """Worker role -> the tool calls it makes, in order."""
    offered: dict[str, list[str]] = field(default_factory=dict)
    """Worker role -> the tools its model was offered."""

    def responder(self, call: ScriptedCall) -> AIMessage:
        name, args, call_id = self._turn(call)
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])

    def model(self) -> ScriptedChatModel:
        return ScriptedChatModel(responder=self.responder)

    def _turn(self, call: ScriptedCall) -> tuple[str, dict[str, Any], str]:
        output = _forced(call.tool_choice) or call.output_tool
        if call.role == "strategist":
            if output == "submit_plan":
                return "submit_plan", {"objective": "scripted", "steps": [
                    {"id": f"s{i}", "role": role, "instruction": f"scripted step for the {role}"}
                    for i, role in enumerate(self.steps, 1)]}, "plan"
            if output == "submit_review":
                return "submit_review", {"verdict": "decide", "reason": "scripted review"}, "review"
            return "submit_decision", {"summary": "scripted decision", "rationale": "scripted rationale",
                                       "confidence": 0.5, "outcome": "partially_achieved"}, "decision"
        role = str(call.role)
        self.offered.setdefault(role, list(call.tools))
        done = len(call.results)
        todo = self.steps.get(role, [])
        if done < len(todo):
            name, args = todo[done]
            return name, args, f"{role}-{done}"
        return "submit_finding", {"summary": f"{role} finished", "confidence": 0.5}, f"{role}-finding"


def _forced(choice: Any) -> str | None:
    if isinstance(choice, dict):
        return choice.get("function", {}).get("name")
    return choice if isinstance(choice, str) and choice.startswith("submit_") else None
