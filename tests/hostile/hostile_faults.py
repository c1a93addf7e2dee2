"""Helpers for the hostile-conditions tests: a model endpoint that plays the team by the offline rules and breaks
on the requests a test chooses, and readers for what a run left behind.

``FaultyTeam`` is a responder for ``agentmesh.testing.OpenAIServer``: request by request it asks ``fault(n, role,
body)`` for a fault (an error reply, a slow or cut reply, a malformed tool call…) and otherwise answers as the
offline model would. Everything goes through the real ``ChatOpenAI`` HTTP path.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentmesh.persistence import audit
from agentmesh.testing import Reply
from agentmesh.testing.offline_responder import offline_responder

Fault = Callable[[int, str | None, dict[str, Any]], Reply | None]
"""(request number from 1, the asking agent's role, the request body) -> a fault reply, or None to answer well."""

TERMINAL = {"done", "failed", "budget_exceeded", "waiting_approval"}


def role_of(body: dict[str, Any]) -> str | None:
    system = next((m.get("content") for m in body.get("messages", []) if m.get("role") == "system"), "")
    found = re.search(r"You are the \*\*(\w+)\*\*", str(system))
    return found.group(1) if found else None


def offered(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]


def forced(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    return choice.get("function", {}).get("name") if isinstance(choice, dict) else None


def output_tool(body: dict[str, Any]) -> str | None:
    return forced(body) or next((t for t in offered(body) if t.startswith("submit_")), None)


@dataclass(kw_only=True)
class FaultyTeam:
    """The offline rules over HTTP, with faults where ``fault`` says."""

    fault: Fault
    requests: int = 0
    """Chat completion requests received."""
    faults: int = 0
    """How many of them got a fault."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests += 1
            n = self.requests
        injected = self.fault(n, role_of(body), body)
        if injected is not None:
            with self._lock:
                self.faults += 1
            return injected
        return offline_responder(body)


def call_ids(result: dict[str, Any]) -> list[str]:
    return [c["id"] for step in result["steps"] for c in step["tool_calls"]]


def assert_ended(result: dict[str, Any]) -> None:
    """The run ended on its own with a recorded, explained status."""
    assert result["status"] in TERMINAL, result["status"]
    if result["status"] in ("failed", "budget_exceeded"):
        assert result["error"], "a failed run says why"
        assert "Traceback" not in result["error"]
        assert "\n" not in result["error"].strip(), result["error"]
    assert result["steps"], "the steps run so far are kept"
    for step in result["steps"]:
        assert step["status"] != "running" or result["status"] == "waiting_approval", step


def assert_audit_complete(engine: Any, result: dict[str, Any]) -> list[audit.ToolCallRecord]:
    """Every tool call of the run's JSON has an audit record with a final status (or is waiting for approval)."""
    records = {r.tool_call_id: r for r in audit.list_calls(engine, result["run_id"])}
    for call_id in call_ids(result):
        assert call_id in records, f"tool call {call_id} is not in the audit"
        record = records[call_id]
        assert record.status in audit.FINAL or record.approval == "pending", (call_id, record.status)
    assert set(records) == set(call_ids(result)), "the audit and the run JSON disagree"
    return list(records.values())


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]
