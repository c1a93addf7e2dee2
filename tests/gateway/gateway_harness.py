"""Helpers for the tool gateway tests: a scripted four-agent mesh run through the real runtime, and the gateway
called directly with a run context built here (for the many small examples a full run is too slow for).

A ``MeshScript`` plays every agent: the strategist plans one step per worker role it is given, then decides;
each worker makes its scripted tool calls, one per model turn, then submits a finding. It answers both the
``ScriptedChatModel`` (``responder``) and the local OpenAI-protocol server (``openai_responder``), so the same
script drives the in-process seam and the real ``ChatOpenAI`` HTTP path.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage

from agentmesh.agents.context import RunContext, StepScope
from agentmesh.core.bundled import DEFAULT_POLICY_FILE
from agentmesh.persistence import audit
from agentmesh.plugins.operations.world import World
from agentmesh.testing import Reply, ToolCall
from agentmesh.testing.scripted import ScriptedCall, ScriptedChatModel

WORKERS = ("analyst", "optimizer", "innovator")

Turn = tuple[str, dict[str, Any] | str]
"""One scripted tool call: the tool's name and its arguments (a raw string is sent as is: malformed JSON)."""


@dataclass(kw_only=True)
class MeshScript:
    """Plays the strategist and the workers of the mesh; records the tool results each worker saw."""

    steps: dict[str, list[Turn]]
    """Worker role -> the tool calls it makes, one per model turn, before it submits its finding."""
    seen: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Worker role -> the tool results (parsed ToolMessage JSON) it had when it submitted its finding."""
    decisions: int = 0
    """How many times the strategist was asked for the decision."""

    def plan(self) -> dict[str, Any]:
        roles = list(self.steps) or ["analyst"]
        return {"objective": "scripted objective", "steps": [
            {"id": f"s{i}", "role": role, "instruction": f"scripted step for the {role}"}
            for i, role in enumerate(roles, 1)
        ]}

    def turn(self, role: str | None, output_tool: str | None, results: list[dict[str, Any]]) -> list[tuple[str, Any, str]]:
        """The next reply as (tool, args, call id) triples."""
        if role == "strategist":
            if output_tool == "submit_plan":
                return [("submit_plan", self.plan(), "plan")]
            if output_tool == "submit_review":
                return [("submit_review", {"verdict": "decide", "reason": "scripted review"}, "review")]
            self.decisions += 1
            return [("submit_decision", {"summary": "scripted decision", "rationale": "scripted rationale",
                                         "confidence": 0.5, "outcome": "partially_achieved"}, "decision")]
        assert role in WORKERS, f"unexpected role {role!r}"
        calls = self.steps.get(role, [])
        done = len(results)
        if done < len(calls):
            name, args = calls[done]
            return [(name, args, f"{role}-{done}")]
        self.seen[role] = results
        return [("submit_finding", {"summary": f"{role} finished", "confidence": 0.5}, f"{role}-finding")]

    # -- the two seams --------------------------------------------------------------------------------

    def responder(self, call: ScriptedCall) -> AIMessage:
        triples = self.turn(call.role, _forced(call.tool_choice) or call.output_tool, call.results)
        return AIMessage(content="", tool_calls=[
            {"name": name, "args": args, "id": call_id, "type": "tool_call"} for name, args, call_id in triples
        ])

    def model(self) -> ScriptedChatModel:
        return ScriptedChatModel(responder=self.responder)

    def openai_responder(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        found = re.search(r"You are the \*\*(\w+)\*\*", str(system))
        tools = [t["function"]["name"] for t in body.get("tools", [])]
        output_tool = _forced(body.get("tool_choice")) or next((t for t in tools if t.startswith("submit_")), None)
        results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
        triples = self.turn(found.group(1) if found else None, output_tool, results)
        return Reply(tool_calls=[ToolCall(name=name, arguments=args, id=call_id) for name, args, call_id in triples])


def _forced(choice: Any) -> str | None:
    if isinstance(choice, dict):
        return choice.get("function", {}).get("name")
    return choice if isinstance(choice, str) and choice.startswith("submit_") else None


def write_policy(home: Path, edit: Callable[[str], str]) -> Path:
    """Copy the default policy to ``$AGENTMESH_HOME/policy.toml``, edited by ``edit`` (text -> text)."""
    original = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    text = edit(original)
    assert text != original, "the policy edit changed nothing"
    home.mkdir(parents=True, exist_ok=True)
    path = home / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the gateway called directly -----------------------------------------------------------------------


@dataclass(kw_only=True)
class GatewayHarness:
    """One run's context, and the gateway called as an agent step would call it."""

    run: RunContext
    scope: StepScope
    ids: Any = field(default_factory=lambda: itertools.count(1))
    attempted: list[str] = field(default_factory=list)
    """Tool call ids passed to the gateway, in order (repeats included)."""

    @property
    def world(self) -> World:
        return self.run.resources.get(World)

    def offered(self, agent: str) -> set[str]:
        """What an Agent of this role is offered (tools the policy lets it call)."""
        return {t.name for t in self.run.registry if agent in self.run.policy.allowed_roles(t)}

    async def call(self, tool: str, args: Any, *, agent: str = "optimizer", call_id: str | None = None,
                   offered: set[str] | None = None, error: str | None = None) -> dict[str, Any]:
        """One tool call; ``offered`` defaults to every tool, so the gateway's own role check is what decides."""
        call_id = call_id or f"call-{next(self.ids)}"
        self.attempted.append(call_id)
        call = {"id": call_id, "name": tool, "args": args}
        if error is not None:
            call["error"] = error
        everything = set(self.run.registry.names())
        content = await self.run.gateway.call(call, agent=agent, step_key=self.scope.key, node=self.scope.node,
                                              offered=everything if offered is None else offered)
        return json.loads(content)

    def records(self) -> list[audit.ToolCallRecord]:
        return audit.list_calls(self.run.engine, self.run.run_id)

    def record(self, call_id: str) -> audit.ToolCallRecord:
        found = audit.get_call(self.run.engine, self.run.run_id, call_id)
        assert found is not None, f"no audit record for {call_id}"
        return found
