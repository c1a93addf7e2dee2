"""OpenAI-compatible endpoints, so any OpenAI client or chat front end can submit goals.

- ``GET /v1/models``: one model per registered graph (the id is the graph's name).
- ``POST /v1/chat/completions``: the last user message is the goal, earlier messages are its context, the
  ``model`` picks the graph. The reply is the decision (summary, actions, rationale); with ``stream: true``
  progress lines (plan, steps, tool calls, findings) stream first as content deltas, then the decision's text
  as token deltas while the model writes it (its summary and rationale; the rest once it has validated). When a
  call needs approval the reply says so; answering ``approve`` or ``reject`` (optionally with a reason) in the same
  conversation records the verdict and continues that run; ``approve with {"replicas": 5}`` approves the waiting
  call with those arguments changed.

    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key=token)
    client.chat.completions.create(model="mesh", messages=[{"role": "user", "content": "…goal…"}])
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agentmesh.core.exceptions import NotFoundError, UserError
from agentmesh.interfaces._goals import GoalService
from agentmesh.interfaces._text import LiveDecision, decision_text, progress_line
from agentmesh.interfaces.identities import current_identity, require

__all__ = ["router"]

router = APIRouter(tags=["openai-compatible"])

_VERDICT = re.compile(r"^\s*(approve|approved|yes|y|ok|reject|rejected|no|n|deny)\b[\s:,.!-]*(.*)$", re.I | re.S)
_RUN_REF = re.compile(r"agentmesh run `?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
MAX_CONTEXT_CHARS = 2000


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Annotated[str, StringConstraints(max_length=64)]
    text: Annotated[str, StringConstraints(max_length=8000)] | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Annotated[str, StringConstraints(max_length=8000)] | Annotated[list[ContentPart], Field(max_length=50)] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat completion request; sampling parameters are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    """A graph name (GET /v1/models)."""
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=200)]
    stream: bool | None = False
    stream_options: dict[str, Any] | None = None


def _service(request: Request) -> GoalService:
    return request.app.state.service  # type: ignore[no-any-return]


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    """One model per graph: pass its id as `model` to /v1/chat/completions."""
    from agentmesh.runtime.graphs import list_graphs

    service = _service(request)
    data = []
    for name, spec in sorted(list_graphs(service.settings.graphs_paths).items()):
        try:
            description = spec.description
        except Exception:  # a graph module that fails to import is still listed; running it says why
            description = ""
        data.append({"id": name, "object": "model", "created": 0, "owned_by": "agentmesh", "description": description})
    return {"object": "list", "data": data}


def _pending_run(service: GoalService, messages: list[ChatMessage]) -> str | None:
    """The run an earlier assistant reply said is waiting for approval, if it still is."""
    for message in reversed(messages[:-1]):
        if message.role != "assistant":
            continue
        found = _RUN_REF.search(message.text)
        if found:
            try:
                return found.group(1) if service.status(found.group(1)) == "waiting_approval" else None
            except NotFoundError:
                return None
    return None


def _context(messages: list[ChatMessage]) -> list[str]:
    lines = []
    for message in messages:
        text = message.text.strip()
        if text and message.role in ("user", "assistant", "system", "developer"):
            lines.append(f"{message.role}: {text[:MAX_CONTEXT_CHARS]}")
    return lines[-20:]


def _edit_in(text: str) -> tuple[dict[str, Any] | None, str]:
    """``with {"replicas": 5}, reason``: the arguments an approval changes (None: none) and the rest, the reason."""
    found = re.match(r"\s*(?:with\s+)?(?=\{)", text, re.I)
    if found is None:
        return None, text
    try:
        args, end = json.JSONDecoder().raw_decode(text, found.end())
    except ValueError as exc:
        raise UserError(f"the arguments after approve are not JSON ({exc}): e.g. approve with {{\"replicas\": 5}}") \
            from None
    if not isinstance(args, dict):
        raise UserError("the arguments after approve must be a JSON object, e.g. approve with {\"replicas\": 5}")
    return args, text[end:]


@router.post("/chat/completions")
async def chat_completions(request: Request, body: ChatCompletionRequest) -> Any:
    """Submit the last user message as a goal on the graph named by `model`; the reply is the decision."""
    service = _service(request)
    if body.model not in service.graph_names():
        raise NotFoundError(f"The model `{body.model}` does not exist: the models are the graphs "
                            f"({', '.join(service.graph_names())})")
    if body.messages[-1].role != "user" or not body.messages[-1].text.strip():
        raise UserError("the last message must be a user message with the goal as its text")
    last = body.messages[-1].text
    after = 0
    verdict = _VERDICT.match(last)
    pending = _pending_run(service, body.messages) if verdict else None
    identity = current_identity(request)
    if verdict and pending:
        require(identity, "approve")
        approved = verdict.group(1).lower() in ("approve", "approved", "yes", "y", "ok")
        args, reason = _edit_in(verdict.group(2)) if approved else (None, verdict.group(2))
        after = max((int(e["seq"]) for e in service.log.read(pending)), default=0)
        await service.approve(pending, None, approved=approved, approver="chat" if identity.anonymous else identity.name,
                              reason=reason.lstrip(" ,.;:-").strip() or None, args=args)
        run_id = pending
    else:
        require(identity, "submit")
        run_id = service.submit(last, graph=body.model, context=_context(body.messages[:-1]) or None,
                                started_by="chat" if identity.anonymous else identity.name)
    completion_id = f"chatcmpl-{run_id}"
    created = int(time.time())
    if not body.stream:
        result = await service.wait(run_id)
        return {
            "id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": decision_text(result), "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": _usage(result),
            "agentmesh": {"run_id": run_id, "status": result["status"]},
        }
    include_usage = bool((body.stream_options or {}).get("include_usage"))
    return StreamingResponse(_stream(service, run_id, after, completion_id, created, body.model, include_usage),
                             media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _usage(result: dict[str, Any]) -> dict[str, int]:
    usage = result.get("usage") or {}
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _stream(service: GoalService, run_id: str, after: int, completion_id: str, created: int, model: str,
                  include_usage: bool) -> AsyncIterator[str]:
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        payload = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    finished = False
    live = LiveDecision()
    try:
        yield chunk({"role": "assistant", "content": ""})
        async for event in service.follow(run_id, after=after, stop_on_pause=True):
            line = (live.feed(event) if event.get("type") == "token" else progress_line(event)) if event else None
            if line:
                yield chunk({"content": line})
        result = await service.wait(run_id)
        finished = True
        yield chunk({"content": live.rest(decision_text(result))})
        yield chunk({}, "stop")
        if include_usage:
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': _usage(result)})}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        if not finished:  # the client went away (a chat front end's stop button): stop the run too
            service.cancel_soon(run_id)
