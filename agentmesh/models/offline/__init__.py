"""The offline model: a deterministic stand-in for an LLM, so demos, tests and air-gapped machines run with no key.

It is a LangChain ``BaseChatModel`` labelled ``offline``. It is not intelligence: it plays *rules* — an
``OfflineRules`` object a plug-in registers for its domain (the sample operations world's are in
``agentmesh.plugins.operations.offline``) — over the tools it is offered, the goal's words and the observations
in the conversation. Without rules it plans one analyst step, calls no tool and says it could do nothing.
Identical input gives identical output, tool call ids included (a hash of the conversation, the tool and the
arguments), which crash/resume replay relies on.

    model = OfflineChatModel(rules=my_rules)
    model.bind_tools([...]).invoke(messages)

What it answers is decided by the one *output tool* it is offered (``submit_plan``, ``submit_finding``,
``submit_review``, ``submit_decision``, or a schema bound by ``with_structured_output``); a forced
``tool_choice`` is always obeyed. A worker step asks the rules for its next calls until they have none, then for
its finding. A human message after the model's own replies (a re-ask after a validation error) gets the simplest
valid output. Every reply carries ``usage_metadata`` (about four characters a token) and the model name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field, ValidationError

from agentmesh.core.schemas import OUTPUT_TOOLS
from agentmesh.models.offline.conversation import Call, Conversation, read_conversation, text_of

__all__ = ["BasicRules", "OfflineChatModel", "OfflineRules"]


class OfflineRules(Protocol):
    """How the offline model plays one domain. Each method gets the conversation read so far; ``simple`` asks
    for the simplest valid answer (a re-ask after a validation error)."""

    def plan(self, conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
        """A ``Plan`` as data."""
        ...

    def review(self, conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
        """A ``Review`` as data."""
        ...

    def decide(self, conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
        """A ``Decision`` as data."""
        ...

    def next_calls(self, conv: Conversation) -> list[Call]:
        """A worker step's next tool calls (made in one turn), or none when it is time for the finding."""
        ...

    def finding(self, conv: Conversation) -> dict[str, Any]:
        """A ``Finding`` as data."""
        ...


class BasicRules:
    """Rules for no domain at all: investigate nothing, change nothing, and say so."""

    def plan(self, conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
        return _MINIMAL["plan"]

    def review(self, conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
        return _MINIMAL["review"]

    def decide(self, conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
        return {"summary": "No action was taken: the offline model has no rules for this goal's domain.",
                "rationale": "The offline model plays the rules a plug-in registers; none is enabled.",
                "confidence": 0.1, "outcome": "not_achieved"}

    def next_calls(self, conv: Conversation) -> list[Call]:
        return []

    def finding(self, conv: Conversation) -> dict[str, Any]:
        return _MINIMAL["finding"]

_KIND_BY_NAME = {name: name.removeprefix("submit_") for name in OUTPUT_TOOLS}
_KIND_BY_NAME.update({schema.__name__: name.removeprefix("submit_") for name, schema in OUTPUT_TOOLS.items()})
_SCHEMAS = {name.removeprefix("submit_"): schema for name, schema in OUTPUT_TOOLS.items()}
_METHOD = {"plan": "plan", "review": "review", "decision": "decide"}
_MINIMAL: dict[str, dict[str, Any]] = {
    "plan": {"objective": "Investigate the goal", "steps": [{"id": "s1", "role": "analyst",
                                                             "instruction": "Investigate the goal and report."}]},
    "finding": {"summary": "Nothing could be determined.", "confidence": 0.1},
    "review": {"verdict": "decide", "reason": "Deciding with the findings at hand."},
    "decision": {"summary": "No action was taken.", "rationale": "The offline model could not read the inputs.",
                 "confidence": 0.1, "outcome": "not_achieved"},
}


_BASIC = BasicRules()


class OfflineChatModel(BaseChatModel):
    """A rule-based, deterministic chat model that calls agentmesh's tools and output tools; see the module."""

    model_name: str = "offline"
    """Shown wherever a model name is shown."""
    rules: Any = Field(default=None, exclude=True)
    """The ``OfflineRules`` it plays (None: ``BasicRules``)."""

    @property
    def _llm_type(self) -> str:
        return "offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        formatted = [_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = respond(messages, tools or [], tool_choice, self.model_name, self.rules or _BASIC)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # No I/O: the rules take well under a millisecond, so they run inline.
        return self._generate(messages, stop, tools=tools, tool_choice=tool_choice, **kwargs)


def _openai_tool(tool: Any) -> dict[str, Any]:
    if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        return tool
    if hasattr(tool, "openai_schema") and callable(tool.openai_schema):  # an agentmesh Tool
        return tool.openai_schema()
    return convert_to_openai_tool(tool)


def _forced(tool_choice: Any, names: list[str]) -> str | None:
    """The tool a ``tool_choice`` forces, if any."""
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        return name if name in names else None
    if isinstance(tool_choice, str) and tool_choice in names:
        return tool_choice
    if tool_choice in ("any", "required", True) and names:
        output = [n for n in names if n in _KIND_BY_NAME]
        return output[0] if output else names[0] if len(names) == 1 else None
    return None


def respond(messages: list[BaseMessage], tools: list[dict[str, Any]], tool_choice: Any, model_name: str,
            rules: OfflineRules | None = None) -> AIMessage:
    """The model's reply: tool calls (several only for a support step's reads or acts), or text when no tool
    is offered."""
    rules = rules or _BASIC
    conv = read_conversation(messages, tools)
    names = list(conv.tools)
    forced = _forced(tool_choice, names)
    output_tool = forced if forced in _KIND_BY_NAME or forced else next((n for n in names if n in _KIND_BY_NAME), None)
    if tool_choice == "none":
        output_tool = None
    if output_tool is None:
        content = _text_reply(conv)
        return _message(messages, tools, model_name, content=content)
    kind = _KIND_BY_NAME.get(output_tool)
    if kind == "finding" and not forced and tool_choice != "none":
        calls = rules.next_calls(conv)
        if calls:
            return _message(messages, tools, model_name, calls=[(c.name, c.args) for c in calls])
    if kind is None:
        args = fill_schema(conv.tools[output_tool].get("parameters") or {})
    else:
        args = _output(kind, conv, rules)
    return _message(messages, tools, model_name, calls=[(output_tool, args)])


def _output(kind: str, conv: Conversation, rules: OfflineRules) -> dict[str, Any]:
    schema: type[BaseModel] = _SCHEMAS[kind]
    # A re-ask, or our own answer coming back invalid, gets the simplest answer the rules can give.
    simple = bool(conv.reasked) or any(o.name in _KIND_BY_NAME and o.status == "invalid" for o in conv.observations)
    try:
        answer = rules.finding(conv) if kind == "finding" else getattr(rules, _METHOD[kind])(conv, simple=simple)
        return schema.model_validate(answer).model_dump(mode="json")
    except (ValidationError, ValueError, TypeError, KeyError, AttributeError):
        # An exception here is a bug in the rules; the minimal answer keeps the run going.
        return schema.model_validate(_MINIMAL[kind]).model_dump(mode="json")


def _text_reply(conv: Conversation) -> str:
    goal = conv.goal.strip()
    return ("offline model: I answer with tool calls and structured output only. "
            + (f"Received: {goal[:200]}" if goal else "Received no text."))


def fill_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A minimal value valid for a JSON schema (for a forced tool the rules know nothing about)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema and depth < 8:
        return fill_schema(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs, depth + 1)
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key) and depth < 8:
            return fill_schema(schema[key][0], defs, depth + 1)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: fill_schema(props.get(k, {}), defs, depth + 1) for k in schema.get("required", []) if depth < 8}
    if kind == "array":
        return [fill_schema(schema.get("items", {}), defs, depth + 1) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return "offline"[: schema.get("maxLength", 7)].ljust(schema.get("minLength", 0), "x")


def _tokens(chars: int) -> int:
    return max(1, (chars + 3) // 4)


def _message(
    messages: list[BaseMessage], tools: list[dict[str, Any]], model_name: str, *,
    content: str = "", calls: Sequence[tuple[str, dict[str, Any]]] = (),
) -> AIMessage:
    transcript = [_fingerprint(m) for m in messages]
    input_chars = sum(len(t) for t in transcript) + len(json.dumps(tools, default=str))
    tool_calls = []
    output_chars = len(content)
    for name, args in calls:
        body = json.dumps([transcript, name, args], sort_keys=True, default=str)
        call_id = "call_" + hashlib.sha256(body.encode()).hexdigest()[:16]
        tool_calls.append({"name": name, "args": args or {}, "id": call_id, "type": "tool_call"})
        output_chars += len(name) + len(json.dumps(args, default=str))
    usage = {"input_tokens": _tokens(input_chars), "output_tokens": _tokens(output_chars)}
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return AIMessage(content=content, tool_calls=tool_calls, usage_metadata=usage,  # type: ignore[arg-type]
                     response_metadata={"model_name": model_name})


def _fingerprint(message: BaseMessage) -> str:
    parts = [message.type, text_of(message)]
    for tc in getattr(message, "tool_calls", None) or []:
        parts.append(json.dumps([tc.get("name"), tc.get("args"), tc.get("id")], sort_keys=True, default=str))
    if tool_call_id := getattr(message, "tool_call_id", None):
        parts.append(str(tool_call_id))
    return "\x1f".join(parts)
