"""A scripted chat model for tests: replays given tool calls and texts, or answers through a function.

    from agentmesh.testing.scripted import ScriptedChatModel, reply

    model = ScriptedChatModel(responder=lambda call: reply(tool="submit_finding", args={...}))

The responder sees a ``ScriptedCall``: the messages, the offered tool names, the forced tool choice and the
role (read from the system prompt), so a test can play each agent of a mesh differently.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

__all__ = ["ScriptedCall", "ScriptedChatModel", "reply"]


@dataclass(kw_only=True)
class ScriptedCall:
    """What the scripted model was asked."""

    messages: list[BaseMessage]
    tools: list[str]
    tool_choice: Any
    role: str | None

    @property
    def goal(self) -> str:
        text = next((m.content for m in self.messages if isinstance(m, HumanMessage)), "")
        match = re.search(r"# Goal\n(.*?)(\n\n# |\Z)", str(text), re.S)
        return match.group(1).strip() if match else str(text)

    @property
    def results(self) -> list[dict[str, Any]]:
        """The JSON tool results seen so far in this step."""
        out = []
        for m in self.messages:
            if isinstance(m, ToolMessage):
                try:
                    out.append(json.loads(str(m.content)))
                except ValueError:
                    out.append({"status": "?", "raw": m.content})
        return out

    @property
    def output_tool(self) -> str | None:
        return next((t for t in self.tools if t.startswith("submit_")), None)


def reply(*, tool: str | None = None, args: dict[str, Any] | None = None, calls: Sequence[tuple[str, dict[str, Any]]] = (),
          text: str = "", call_id: str | None = None) -> AIMessage:
    """An AIMessage with one tool call (``tool``/``args``), several (``calls``), or just text."""
    pairs = list(calls) + ([(tool, args or {})] if tool else [])
    tool_calls = []
    for name, arguments in pairs:
        digest = hashlib.sha1(json.dumps([name, arguments, text], sort_keys=True, default=str).encode()).hexdigest()
        tool_calls.append({"name": name, "args": arguments, "id": call_id or f"call_{digest[:12]}", "type": "tool_call"})
    return AIMessage(content=text, tool_calls=tool_calls)


class ScriptedChatModel(BaseChatModel):
    """Replays a list of replies in order, or calls ``responder`` for each request."""

    responder: Callable[[ScriptedCall], AIMessage] | None = None
    script: list[AIMessage] = []
    calls: list[ScriptedCall] = []
    model_name: str = "scripted"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        system = next((str(m.content) for m in messages if isinstance(m, SystemMessage)), "")
        role = re.search(r"You are the \*\*(\w+)\*\*", system)
        call = ScriptedCall(messages=list(messages), tools=[t["function"]["name"] for t in kwargs.get("tools", [])],
                            tool_choice=kwargs.get("tool_choice"), role=role.group(1) if role else None)
        self.calls.append(call)
        if self.responder is not None:
            message = self.responder(call)
        elif self.script:
            message = self.script.pop(0)
        else:
            raise RuntimeError("the scripted model ran out of replies")
        # A fresh copy, with usage, so a journal replay and a live reply look alike.
        message = message.model_copy(update={"usage_metadata": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
                                             "response_metadata": {"model_name": self.model_name}})
        return ChatResult(generations=[ChatGeneration(message=message)])
