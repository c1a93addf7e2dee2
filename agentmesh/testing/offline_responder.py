"""The offline model behind the real OpenAI protocol: a responder for ``OpenAIServer``.

    with OpenAIServer(responder=offline_responder, latency_s=0.2) as server:
        ...  # agentmesh with OPENAI_BASE_URL=server.base_url drives the offline rules over HTTP

Benchmarks use it to give model calls a known latency; crash tests use it to make a run slow enough to kill
at a chosen point; both exercise the whole langchain-openai HTTP path.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import convert_to_messages

from agentmesh.models.offline import OfflineChatModel
from agentmesh.testing.openai_server import Reply, ToolCall

__all__ = ["offline_responder"]


def _readable(message: dict[str, Any]) -> dict[str, Any]:
    """An earlier assistant turn whose tool arguments were not JSON (a fault under test) still converts: the rules
    read the tool results that answered it, not its arguments."""
    calls = message.get("tool_calls")
    if not calls:
        return message
    fixed = []
    for call in calls:
        try:
            json.loads(call.get("function", {}).get("arguments") or "{}")
            fixed.append(call)
        except ValueError:
            fixed.append({**call, "function": {**call["function"], "arguments": "{}"}})
    return {**message, "tool_calls": fixed}

_models: list[OfflineChatModel] = []


def _model() -> OfflineChatModel:
    """The offline model playing the enabled plug-ins' rules (the ``plugins`` setting), made once."""
    if not _models:
        from agentmesh.core.settings import get_settings
        from agentmesh.runtime.plugins import load_plugins

        rules = next((p.offline_rules for p in load_plugins(get_settings().plugins) if p.offline_rules), None)
        _models.append(OfflineChatModel(rules=rules))
    return _models[0]


def offline_responder(request: dict[str, Any]) -> Reply:
    messages = convert_to_messages([_readable(m) for m in request.get("messages", [])])
    tools = request.get("tools") or []
    kwargs: dict[str, Any] = {}
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        kwargs["tool_choice"] = choice.get("function", {}).get("name")
    elif choice is not None:
        kwargs["tool_choice"] = choice
    reply = _model().bind_tools(tools, **kwargs).invoke(messages)
    usage: dict[str, Any] = dict(reply.usage_metadata or {})
    return Reply(
        content=str(reply.content) or None,
        tool_calls=[ToolCall(name=c["name"], arguments=json.dumps(c["args"]), id=c["id"]) for c in reply.tool_calls],
        prompt_tokens=usage.get("input_tokens"),
        completion_tokens=usage.get("output_tokens"),
    )
