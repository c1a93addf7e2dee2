"""Agents: a role, a prompt file, the tools the role may use, and a structured output.

    from agentmesh import Agent, Finding

    analyst = Agent(role="analyst")                 # prompts/analyst.md, tools per the policy
    finding = await analyst.run(goal="Why is checkout-api slow?")

``Agent.run`` is one agent step: the model is called with the role's tools plus one *output tool*
(``submit_finding`` …); tool calls go through the gateway; the step ends when the model submits a valid
output. A run that streams tokens (``RunContext.stream_tokens``: ``agentmesh run`` on a terminal, the HTTP
server) or a graph streamed with LangGraph's ``stream_mode="messages"`` reads each reply as a stream: every piece
is a ``token`` event as it arrives, and LangGraph's messages stream gets it too; the whole reply is then read as
strictly as an unstreamed one (``agentmesh.models.astream_reply``). Every model reply is journalled under the
step's key, so a retried or resumed step replays the recorded replies — and so reaches the same tool call ids —
instead of asking the model again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from pydantic import BaseModel, ValidationError
from sqlalchemy import insert, select

from agentmesh.agents.context import RunContext, StepScope, current_run, current_step
from agentmesh.core import observe
from agentmesh.core.exceptions import ModelError
from agentmesh.core.messages import render_step_input, tool_result
from agentmesh.core.schemas import OUTPUT_TOOLS, Finding
from agentmesh.persistence.database import utcnow
from agentmesh.persistence.owner import check_owner
from agentmesh.persistence.tables import model_calls
from agentmesh.prompts import PromptTemplate, load_prompt
from agentmesh.tools import Tool

__all__ = ["Agent"]

_JOURNAL = insert(model_calls)  # built once: every model reply is journalled


@dataclass(kw_only=True)
class Agent:
    """One role of the team."""

    role: str
    """strategist, analyst, optimizer, innovator — or any role a user names (with a prompt file)."""
    prompt: PromptTemplate | str | None = None
    """A template, a prompt file's role name, or None for `prompts/<role>.md`."""
    tools: list[str] | None = None
    """Tool names to offer; None takes the prompt's front matter (`auto`: all the policy allows the role)."""
    output: type[BaseModel] = Finding
    """The structured output the step ends with (one of agentmesh.core.schemas' output tools)."""
    model: str | None = None
    """A model for this agent only; None uses the run's model."""
    description: str = ""
    """One line for `agentmesh agents`; defaults to the prompt's description."""
    _template: PromptTemplate | None = field(default=None, repr=False)

    def template(self, run: RunContext | None = None) -> PromptTemplate:
        if isinstance(self.prompt, PromptTemplate):
            return self.prompt
        if run is not None:
            # Not cached on the agent: a graph's agents live as long as the process, and a promotion or a
            # rollback (or another run's prompts folder) must reach the next step.
            return load_prompt(self.prompt or self.role, folder=run.settings.prompts_path, engine=run.engine)
        if self._template is None:
            self._template = load_prompt(self.prompt or self.role)
        return self._template

    def offered_tools(self, run: RunContext) -> list[Tool]:
        """The tools this agent is offered: its list (or all), less what the policy forbids the role."""
        names = self.tools if self.tools is not None else self.template(run).tools
        candidates = [run.registry.get(n) for n in names] if names is not None else list(run.registry)
        return [t for t in candidates if self.role in run.policy.allowed_roles(t)]

    async def run(self, *, goal: str, variables: dict[str, Any] | None = None, **sections: Any) -> BaseModel:
        """One agent step inside a running goal; returns the validated output.

        ``sections`` are the step input's sections (see agentmesh.core.messages: ``step``, ``plan``,
        ``findings``, ``actions``, ``round_info``, ``memory``); ``variables`` go to the prompt template.
        """
        run = current_run()
        delegate = run.delegates.get(self.role)
        if delegate is not None:  # this role's steps run elsewhere (a task worker: agentmesh.runtime.remote)
            return await delegate(self, goal=goal, variables=variables, sections=sections)
        scope = current_step()
        scope.agent_runs += 1
        key = f"{scope.key}#{scope.agent_runs}"
        template = self.template(run)
        run.prompt_versions[self.role] = f"{template.version}@{template.sha}"
        tools = self.offered_tools(run)
        output_name = _output_tool_name(self.output)
        system = template.render(
            tools=[{"name": t.name, "risk": t.risk, "summary": t.description.split("\n")[0]} for t in tools],
            max_steps=8,
            **(variables or {}),
        )
        messages: list[BaseMessage] = [
            SystemMessage(system),
            HumanMessage(render_step_input(goal=goal, **sections)),
        ]
        schemas = [t.openai_schema() for t in tools] + [_output_schema(output_name, self.output)]
        model = run.model(self.model)
        offered = {t.name for t in tools}
        tool_turns = output_retries = 0
        settings = run.settings
        journal = _journalled(run, key)
        seq = 0
        while True:
            must_answer = not tools or tool_turns >= (template.tool_rounds or settings.max_tool_rounds)
            bound = model.bind_tools(schemas, tool_choice=output_name if must_answer else "auto")
            seq += 1
            reply = await _call_model(run, scope, key, seq, self.role, bound, messages, self.model, journal.get(seq))
            messages.append(reply)
            calls = reply.tool_calls
            # Calls whose arguments were not JSON: each is answered (the endpoint expects a reply to every
            # call id) and, unless it was the answer itself, audited by the gateway as `invalid`.
            broken = reply.invalid_tool_calls
            answers = [c for c in calls if c["name"] == output_name]
            if not calls and not broken:
                output_retries += 1
                _check_retries(self.role, output_retries, settings.max_output_retries, "replied without calling a tool")
                messages.append(HumanMessage(f"Finish by calling `{output_name}` with your answer."))
                continue
            for c in calls:
                if c["name"] == output_name:
                    continue
                content = await run.gateway.call(c, agent=self.role, step_key=scope.key, node=scope.node,
                                                 offered=offered)
                messages.append(ToolMessage(content, tool_call_id=c["id"], name=c["name"]))
            for b in broken:
                name, call_id = b.get("name") or "", b.get("id") or ""
                error = f"arguments are not valid JSON ({b.get('error') or 'unparseable'}): {str(b.get('args'))[:200]}"
                if name == output_name:
                    content = tool_result("invalid", error=error)
                    if not answers:
                        output_retries += 1
                        _check_retries(self.role, output_retries, settings.max_output_retries, error)
                else:
                    content = await run.gateway.call({"id": call_id, "name": name, "args": None, "error": error},
                                                     agent=self.role, step_key=scope.key, node=scope.node,
                                                     offered=offered)
                messages.append(ToolMessage(content, tool_call_id=call_id, name=name))
            if answers:
                try:
                    return self.output.model_validate(answers[0]["args"])
                except ValidationError as exc:
                    output_retries += 1
                    error = _short_errors(exc)
                    _check_retries(self.role, output_retries, settings.max_output_retries, error)
                    messages.append(ToolMessage(tool_result("invalid", error=error), tool_call_id=answers[0]["id"]))
                    for extra in answers[1:]:
                        messages.append(ToolMessage(tool_result("invalid", error="one answer only"),
                                                    tool_call_id=extra["id"]))
                    continue
            tool_turns += 1


def _output_tool_name(schema: type[BaseModel]) -> str:
    for name, candidate in OUTPUT_TOOLS.items():
        if candidate is schema:
            return name
    return "submit_" + schema.__name__.lower()


def _output_schema(name: str, schema: type[BaseModel]) -> dict[str, Any]:
    parameters = schema.model_json_schema()
    parameters.pop("title", None)
    return {
        "type": "function",
        "function": {"name": name, "description": (schema.__doc__ or name).strip().split("\n")[0], "parameters": parameters},
    }


def _check_retries(role: str, used: int, allowed: int, error: str) -> None:
    if used > allowed:
        raise ModelError(f"the {role}'s answer never validated after {allowed} re-asks: {error}")


def _short_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:5])


def _token_events(run: RunContext, scope: StepScope, key: str, seq: int, role: str) -> Callable[[Any], None]:
    """Turns streamed reply pieces into ``token`` events: ``text`` (a piece of the reply's text), or ``tool`` and
    ``args`` (a piece of a tool call's JSON arguments), or ``restart`` (the stream was cut off and starts over:
    drop this call's pieces so far). ``call`` names the model call."""
    names: dict[int, str] = {}
    base = {"type": "token", "agent": role, "node": scope.node, "call": f"{key}/{seq}"}

    def on_piece(piece: Any) -> None:
        if piece is None:
            names.clear()
            run.emit({**base, "restart": True})
            return
        text = piece.text  # the text parts of the piece's content
        if text:
            run.emit({**base, "text": str(text)})
        for chunk in piece.tool_call_chunks:
            index = chunk.get("index") or 0
            if chunk.get("name"):
                names[index] = chunk["name"]
            if chunk.get("args"):
                run.emit({**base, "tool": names.get(index, ""), "args": chunk["args"]})

    return on_piece


def _journalled(run: RunContext, key: str) -> dict[int, dict[str, Any]]:
    """The replies this agent run journalled before (a retried or resumed step replays them): seq -> message.

    Read once per agent run, not before each model call: only the run's owner writes its journal, and a fenced
    owner's next write is rejected (``check_owner``), so nothing appears under this key while the step runs."""
    with run.engine.connect() as conn:
        check_owner(conn, run.run_id, run.owner)
        rows = conn.execute(select(model_calls.c.seq, model_calls.c.message)
                            .where(model_calls.c.run_id == run.run_id, model_calls.c.step_key == key)).all()
    return {seq: message for seq, message in rows}


async def _call_model(run: RunContext, scope: StepScope, key: str, seq: int, role: str, bound: Any,
                      messages: list[BaseMessage], model: str | None = None,
                      journalled: dict[str, Any] | None = None) -> AIMessage:
    """One model call, replayed from the journal when this step already made it (``journalled``).

    Its ``model_call`` event is stored with the reply, in the journal's transaction (one commit a call, not two),
    dated when the call started; a call that fails stores it on its own. A process killed while the model
    answers leaves no event for that call: a progress line of a call that was never journalled, and is made again
    on resume."""
    if journalled is not None:
        (message,) = messages_from_dict([journalled])
        assert isinstance(message, AIMessage)
        return message
    run.budget.check()
    event = {"type": "model_call", "agent": role, "node": scope.node, "time": time.time()}
    from agentmesh.models import langgraph_streams_messages

    requested = model or run.settings.model_name
    with observe.span(f"chat {requested}", {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": requested, "gen_ai.agent.name": role,
        "gen_ai.provider.name": "agentmesh.offline" if requested == "offline" else "openai",
        **_server(run.settings.openai_base_url if requested != "offline" else None),
    }, client=True) as current:
        started = time.perf_counter()
        streamed = run.stream_tokens or langgraph_streams_messages()
        try:
            reply = await _invoke(bound, messages, _token_events(run, scope, key, seq, role) if streamed else None,
                                  restarts=run.settings.model_retries)
        except Exception as exc:
            run.emit(event)
            if isinstance(exc, ModelError):
                observe.run_log("%s · chat %s failed: %s", role, requested, exc, level=logging.WARNING)
            raise
        return _record_reply(run, key, seq, role, reply, current, time.perf_counter() - started, event)


async def _invoke(bound: Any, messages: list[BaseMessage], on_piece: Callable[[Any], None] | None,
                  *, restarts: int) -> AIMessage:
    """The model's reply: streamed piece by piece to ``on_piece`` when given, else in one answer."""
    from agentmesh.models import astream_reply, model_error

    try:
        if on_piece is not None:
            reply = await astream_reply(bound, messages, on_piece=on_piece, restarts=restarts)
        else:
            reply = await bound.ainvoke(messages)
    except ValidationError as exc:
        # LangChain could not build a message from the reply, e.g. tool arguments that are JSON but not an
        # object: an unusable answer (one line, no node retry), not a bug of the run.
        raise ModelError(f"the model's reply could not be read: {_short_errors(exc)}") from None
    except Exception as exc:
        mapped = model_error(exc)
        if mapped is not None:
            raise mapped from None
        raise
    if not isinstance(reply, AIMessage):
        raise ModelError(f"the model returned {type(reply).__name__}, not a chat reply")
    return reply


def _server(base_url: str | None) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(base_url or "https://api.openai.com/v1")
    return {"server.address": parts.hostname, "server.port": parts.port or (443 if parts.scheme == "https" else 80)}


def _record_reply(run: RunContext, key: str, seq: int, role: str, reply: AIMessage, current: Any,
                  seconds: float, event: dict[str, Any]) -> AIMessage:
    """Journal a fresh reply (with the call's ``event``), count its usage, and tell the span and the Prefect
    run's log."""
    from agentmesh.models import cost_usd, usage_of
    # Some OpenAI-compatible servers omit tool call ids; the id is half of the idempotency key, so give each
    # a stable one (journalled with the reply, so a replay reuses it).
    for index, call in enumerate([*reply.tool_calls, *reply.invalid_tool_calls]):
        if not call.get("id"):
            call["id"] = "call_" + hashlib.sha256(f"{run.run_id}|{key}|{seq}|{index}".encode()).hexdigest()[:20]
    input_tokens, output_tokens = usage_of(reply)
    name = reply.response_metadata.get("model_name") or run.settings.model_name
    cost = cost_usd(run.settings, name, input_tokens, output_tokens)
    run.budget.add(input_tokens, output_tokens, cost)
    with run.engine.begin() as conn:
        check_owner(conn, run.run_id, run.owner)
        conn.execute(_JOURNAL, {
            "run_id": run.run_id, "step_key": key, "seq": seq, "agent": role, "model": name,
            "message": message_to_dict(reply), "input_tokens": input_tokens, "output_tokens": output_tokens,
            "cost_usd": cost or 0.0, "created": utcnow(),
        })
        run.emit(event, conn)
    calls = [c["name"] for c in reply.tool_calls]
    observe.run_log("%s · chat %s · %d in / %d out tokens · %s · %.2f s%s", role, name, input_tokens, output_tokens,
                    "no price" if cost is None else f"${cost:.4f}", seconds,
                    f" → {', '.join(calls)}" if calls else "")
    finish = reply.response_metadata.get("finish_reason")
    observe.set_attributes(current, {
        "gen_ai.response.model": name, "gen_ai.response.id": reply.id,
        "gen_ai.response.finish_reasons": [finish] if finish else None,
        "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens,
        "agentmesh.cost_usd": cost, "agentmesh.latency_s": round(seconds, 3),
    })
    if observe.capture_content():
        key_value = run.settings.openai_api_key
        output = [{"role": "assistant", "parts": [
            *([{"type": "text", "content": reply.text}] if reply.text else []),
            *({"type": "tool_call", "id": c["id"], "name": c["name"], "arguments": c["args"]} for c in reply.tool_calls),
        ]}]
        observe.set_attributes(current, {"gen_ai.output.messages": observe.redact(
            json.dumps(output, default=str), key_value.get_secret_value() if key_value else None)})
    return reply
