"""Helpers for the offline model's tests: step inputs, output tool schemas, and whole steps against a real world."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from agentmesh.core.exceptions import NotFoundError, PolicyViolation
from agentmesh.core.messages import render_step_input, tool_result
from agentmesh.core.schemas import OUTPUT_TOOLS
from agentmesh.gateway.policy import Policy
from agentmesh.models.offline import OfflineChatModel
from agentmesh.plugins.operations.offline import OperationsRules
from agentmesh.plugins.operations.world import World
from agentmesh.tools import ToolRegistry

RULES = OperationsRules()

POLICY_FILE = Path(__file__).resolve().parents[2] / "agentmesh" / "default_policy.toml"


def output_schema(name: str) -> dict[str, Any]:
    schema: type[BaseModel] = OUTPUT_TOOLS[name]
    parameters = schema.model_json_schema()
    parameters.pop("title", None)
    return {"type": "function", "function": {"name": name, "description": schema.__doc__ or name,
                                             "parameters": parameters}}


def step_messages(goal: str, *, role: str, instruction: str, step_id: str = "s1", **sections: Any) -> list[BaseMessage]:
    return [
        SystemMessage(f"You are the {role}."),
        HumanMessage(render_step_input(goal=goal, step={"id": step_id, "role": role, "instruction": instruction},
                                       **sections)),
    ]


class StepRun:
    """One worker step: the model's calls, executed against the world, until it submits its finding."""

    def __init__(self, world: World, registry: ToolRegistry, policy: Policy) -> None:
        self.world, self.registry, self.policy = world, registry, policy

    def tools_for(self, role: str) -> list[dict[str, Any]]:
        return [self.registry.get(n).openai_schema() for n in self.policy.roles[role] if n in self.registry]

    def execute(self, name: str, args: dict[str, Any], call_id: str) -> str:
        tool = self.registry.get(name)
        ctx = SimpleNamespace(resource=lambda kind: self.world, idempotency_key=f"test:{call_id}")
        try:
            valid = tool.args_model.model_validate(args)
            return tool_result("ok", result=json.loads(json.dumps(
                tool.function(**dict(valid), ctx=ctx), default=str)))
        except PolicyViolation as exc:
            return tool_result("refused", error=str(exc))
        except (NotFoundError, ValueError) as exc:
            return tool_result("failed", error=str(exc))

    def __call__(self, goal: str, *, role: str, instruction: str, tools: list[dict[str, Any]] | None = None,
                 intercept: Callable[[str, dict[str, Any]], str | None] | None = None,
                 max_turns: int = 20, findings: list[dict[str, Any]] | None = None,
                 ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any], dict[str, Any]]]]:
        """Run the step; returns the finding's arguments and (tool, args, result envelope) for each call."""
        messages = step_messages(goal, role=role, instruction=instruction, findings=findings)
        model = OfflineChatModel(rules=RULES).bind_tools((tools if tools is not None else self.tools_for(role))
                                              + [output_schema("submit_finding")], tool_choice="auto")
        calls = []
        for _ in range(max_turns):
            reply = model.invoke(messages)
            assert isinstance(reply, AIMessage) and reply.tool_calls
            messages.append(reply)
            if reply.tool_calls[0]["name"] == "submit_finding":
                assert len(reply.tool_calls) == 1
                OUTPUT_TOOLS["submit_finding"].model_validate(reply.tool_calls[0]["args"])
                return reply.tool_calls[0]["args"], calls
            for call in reply.tool_calls:  # a turn's parallel calls, in order, as the agent loop runs them
                content = (intercept and intercept(call["name"], call["args"])) or \
                    self.execute(call["name"], call["args"], call["id"])
                calls.append((call["name"], call["args"], json.loads(content)))
                messages.append(ToolMessage(content, tool_call_id=call["id"], name=call["name"]))
        raise AssertionError("the step never ended")
