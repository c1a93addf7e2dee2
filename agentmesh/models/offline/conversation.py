"""What the offline model reads: the conversation and the tools it is offered, in one plain record.

Everything here is defensive: a message, a tool result or a schema of an unexpected shape yields an empty
or default value, never an exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from agentmesh.core.messages import parse_sections

__all__ = ["Call", "Conversation", "Observation", "find_number", "names_in", "read_conversation", "text_of"]


@dataclass(kw_only=True, frozen=True)
class Call:
    """A tool call the rules want to make next."""

    name: str
    """The tool's name."""
    args: dict[str, Any]
    """Its arguments."""


@dataclass(kw_only=True)
class Observation:
    """One tool call made earlier in this conversation, with what came back."""

    name: str
    """The tool called."""
    args: dict[str, Any]
    """The arguments it was called with."""
    status: str
    """``ok``, ``refused``, ``failed``, ``invalid`` or ``rejected`` (``pending`` if no result came back)."""
    result: Any = None
    """The result, when ok."""
    error: str = ""
    """The reason, when not ok."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(kw_only=True)
class Conversation:
    """The parsed input of one model call."""

    system: str = ""
    """The system prompt (the role's template)."""
    text: str = ""
    """The first human message, verbatim."""
    sections: dict[str, str] = field(default_factory=dict)
    """That message's Markdown sections (``Goal``, ``Your step``…)."""
    step: dict[str, str] = field(default_factory=dict)
    """The ``# Your step`` section as id / role / instruction."""
    observations: list[Observation] = field(default_factory=list)
    """Tool calls made so far, in order."""
    reasked: str = ""
    """A later human message (a re-ask after a validation error), if any."""
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Offered tools by name: the OpenAI ``function`` dict (name, description, parameters)."""

    @property
    def goal(self) -> str:
        return self.sections.get("Goal", "" if self.sections else self.text)

    @property
    def instruction(self) -> str:
        return self.step.get("instruction", "")

    def offered(self, name: str) -> bool:
        return name in self.tools

    def calls(self, name: str) -> list[Observation]:
        return [o for o in self.observations if o.name == name]

    def last_ok(self, name: str) -> Observation | None:
        return next((o for o in reversed(self.observations) if o.name == name and o.ok), None)

    def made(self, call: Call) -> bool:
        return any(o.name == call.name and o.args == call.args for o in self.observations)

    def properties(self, tool: str) -> dict[str, Any]:
        params = self.tools.get(tool, {}).get("parameters") or {}
        props = params.get("properties") if isinstance(params, dict) else None
        return props if isinstance(props, dict) else {}

    def required(self, tool: str) -> list[str]:
        params = self.tools.get(tool, {}).get("parameters") or {}
        req = params.get("required") if isinstance(params, dict) else None
        return [r for r in req if isinstance(r, str)] if isinstance(req, list) else []

    def call(self, tool: str, **wanted: Any) -> Call:
        """A call of ``tool`` with the wanted arguments, renamed to fit its schema where names differ."""
        props = self.properties(tool)
        if not props:
            return Call(name=tool, args=wanted)
        args: dict[str, Any] = {}
        spare = [p for p in props if p not in wanted]
        for key, value in wanted.items():
            if key in props:
                args[key] = value
            elif spare and key in _REQUIRED_WANTS:
                args[spare.pop(0)] = value
        return Call(name=tool, args=args)


# Arguments the rules always need; other wanted arguments are dropped when the tool does not take them.
_REQUIRED_WANTS = {"service", "dataset", "ticket_id", "replicas", "operations", "message", "reason"}


def text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(parts)


def read_conversation(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> Conversation:
    conv = Conversation(tools=_tools_by_name(tools))
    pending: dict[str, Observation] = {}
    seen_ai = False
    for message in messages:
        if isinstance(message, SystemMessage):
            conv.system += text_of(message) + "\n"
        elif isinstance(message, HumanMessage):
            if seen_ai or conv.text:
                conv.reasked = text_of(message)
            else:
                conv.text = text_of(message)
        elif isinstance(message, AIMessage):
            seen_ai = True
            for tc in message.tool_calls:
                obs = Observation(name=str(tc.get("name", "")), args=dict(tc.get("args") or {}), status="pending")
                pending[str(tc.get("id"))] = obs
                conv.observations.append(obs)
        elif isinstance(message, ToolMessage):
            found = pending.get(str(message.tool_call_id))
            if found is None:
                found = Observation(name=str(message.name or ""), args={}, status="pending")
                conv.observations.append(found)
            obs = found
            _fill(obs, text_of(message))
    conv.sections = parse_sections(conv.text)
    conv.step = _step(conv.sections.get("Your step", ""))
    return conv


def _fill(obs: Observation, content: str) -> None:
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("status"), str):
        edited = body.get("edited")
        if isinstance(edited, dict) and isinstance(edited.get("args"), dict):
            obs.args = dict(edited["args"])  # a person approved the call with other arguments: those were used
        obs.status = body["status"]
        obs.result = body.get("result")
        obs.error = str(body.get("error") or "")
    else:
        # A tool result outside the agentmesh envelope: take it as an ok result.
        obs.status, obs.result = "ok", body if body is not None else content


def _step(section: str) -> dict[str, str]:
    step = {}
    for line in section.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("id", "role", "instruction"):
            step[key.strip()] = value.strip()
    return step


def _tools_by_name(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {}
    for t in tools or []:
        fn = t.get("function", t) if isinstance(t, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            found[fn["name"]] = fn
    return found


def find_number(obj: Any, *exact: str, contains: str = "", exclude: tuple[str, ...] = ()) -> float | None:
    """A number in a result dict: the first ``exact`` key present, else a key containing ``contains``."""
    if not isinstance(obj, dict):
        return None
    for key in exact:
        value = obj.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    if contains:
        for key, value in obj.items():
            k = str(key).lower()
            if contains in k and not any(x in k for x in exclude) and isinstance(value, int | float) \
                    and not isinstance(value, bool):
                return float(value)
    for value in obj.values():
        if isinstance(value, dict):
            found = find_number(value, *exact, contains=contains, exclude=exclude)
            if found is not None:
                return found
    return None


_NAME_KEYS = ("name", "id", "ticket_id", "service", "dataset")


def items_in(result: Any) -> list[Any]:
    """The list inside a listing result (a bare list, or the first list value of a dict)."""
    if isinstance(result, list):
        return result
    if isinstance(result, dict):
        for value in result.values():
            if isinstance(value, list):
                return value
    return []


def names_in(result: Any) -> list[str]:
    """Entity names in a listing result: strings, or the ``name``/``id`` of dicts."""
    names = []
    for item in items_in(result):
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            name = next((item[k] for k in _NAME_KEYS if isinstance(item.get(k), str)), None)
            if name:
                names.append(name)
    return names


_WORD = re.compile(r"[a-z0-9]+")
# Name parts too generic to identify an entity by themselves.
_GENERIC = {"api", "svc", "service", "app", "web", "csv", "parquet", "data", "dataset", "table", "v1", "v2", "the"}


def best_match(names: list[str], text: str) -> str | None:
    """The name the text refers to: named in full, else sharing the most distinctive words."""
    lowered = text.lower()
    words = set(_WORD.findall(lowered))
    best, best_score = None, 0
    for name in names:
        if name.lower() in lowered:
            score = 1000 + len(name)
        else:
            parts = [p for p in _WORD.findall(name.lower()) if p not in _GENERIC]
            score = sum(1 for p in parts if p in words or p.rstrip("s") in words or p + "s" in words)
        if score > best_score:
            best, best_score = name, score
    return best
