"""Model tokens stream end to end over the real ``langchain-openai`` HTTP path: a goal's ``token`` events (and a
terminal's live view of them) arrive while the local OpenAI-protocol server is still writing the reply; streamed
tool arguments are parsed as strictly as a whole reply; a stream cut off mid-reply starts over within the retry
budget; and LangGraph's ``stream_mode="messages"`` on an agentmesh-compiled graph yields the agent's tokens."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypedDict

from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.messages.ai import add_ai_message_chunks
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from rich.console import Console

from agentmesh import Agent, Finding, Settings, arun_goal, compile
from agentmesh.agents.context import running
from agentmesh.interfaces.cli._render import EventPrinter
from agentmesh.models import astream_reply, make_chat_model
from agentmesh.persistence.events import event_log
from agentmesh.runtime.components import build_run_context, components
from agentmesh.testing import OpenAIServer, Reply, ToolCall, cut, text, tool_call
from agentmesh.testing.offline_responder import offline_responder

GOAL = "What is the p95 latency of payments-api right now?"


def _forced(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    return choice["function"]["name"] if isinstance(choice, dict) else None


def slow_decision(delay_s: float) -> Callable[[dict[str, Any]], Reply]:
    """The offline rules over HTTP; the decision's reply streams one chunk every ``delay_s``."""

    def respond(body: dict[str, Any]) -> Reply:
        reply = offline_responder(body)
        return replace(reply, token_delay_s=delay_s) if _forced(body) == "submit_decision" else reply

    return respond


class _Timed(io.StringIO):
    """A terminal's output, with when each write happened."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[float, str]] = []

    def write(self, s: str) -> int:
        self.writes.append((time.time(), s))
        return super().write(s)


async def test_a_goal_streams_its_tokens_live_before_the_reply_ends(home: Any) -> None:
    screen = _Timed()
    printer = EventPrinter(Console(file=screen, force_terminal=True, width=120))
    seen: list[tuple[float, dict[str, Any]]] = []
    lock = threading.Lock()

    def on_event(event: dict[str, Any]) -> None:
        with lock:
            seen.append((time.time(), dict(event)))
        printer(event)

    with OpenAIServer(responder=slow_decision(0.05)) as server:
        settings = Settings(model="gpt-4o-mini", openai_api_key="sk-test", openai_base_url=server.base_url,
                            node_retries=0)
        result = await arun_goal(GOAL, settings=settings, on_event=on_event, stream_tokens=printer.wants_tokens)

    assert result["status"] == "done", result["error"]
    [decide] = [i for i, body in enumerate(server.requests) if _forced(body) == "submit_decision"]
    assert server.requests[decide]["stream"] is True
    pieces = [(t, e) for t, e in seen if e["type"] == "token" and e.get("tool") == "submit_decision"]
    assert len(pieces) > 10, "the decision arrives in many pieces"
    # Every piece, in order, is the model's reply: together they are the arguments the decision was read from.
    args = json.loads("".join(e["args"] for _, e in pieces))
    assert args["summary"] == result["decision"]["summary"]
    assert {e["agent"] for _, e in pieces} == {"strategist"} and {e["node"] for _, e in pieces} == {"decide"}
    # Live: the first piece reached the run's listener, and the terminal showed it, before the reply ended.
    first = pieces[0][0]
    assert first < server.ended[decide]
    shown = next(t for t, s in screen.writes if "✎ strategist (decide)" in s)
    assert shown < server.ended[decide]
    # Tokens are live only: the run's stored events have none (and keep their numbering without gaps).
    stored = event_log(components(settings).engine).read(result["run_id"])
    assert "token" not in {e["type"] for e in stored}
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))


async def test_streamed_tool_arguments_are_read_as_strictly_as_a_whole_reply(home: Any) -> None:
    truncated = '{"summary": "cut short", "confidence": 0.5'  # no closing brace: not JSON
    with OpenAIServer() as server:
        chat = make_chat_model(Settings(model="gpt-4o-mini", openai_api_key="sk-test", openai_base_url=server.base_url))
        server.script += [Reply(tool_calls=[ToolCall(name="submit_finding", arguments=truncated)])] * 3
        pieces: list[Any] = []
        streamed = await astream_reply(chat, [], on_piece=pieces.append, restarts=0)
        whole = await chat.ainvoke("x")
        merged = [c async for c in chat.astream("x")]
    assert len(pieces) > 3 and None not in pieces
    # The whole reply calls it invalid; so does the streamed one (LangChain's own merge would accept it).
    assert whole.tool_calls == [] and [c["name"] for c in whole.invalid_tool_calls] == ["submit_finding"]
    assert streamed.tool_calls == [] and [c["args"] for c in streamed.invalid_tool_calls] == [truncated]
    assert add_ai_message_chunks(merged[0], *merged[1:]).tool_calls != [], "the lenient merge this guards against"


async def test_a_valid_streamed_reply_reads_the_same_as_a_whole_one(home: Any) -> None:
    answer = {"summary": "payments-api p95 is 224 ms", "confidence": 0.7}
    with OpenAIServer(script=[tool_call("submit_finding", answer, id="c1", prompt_tokens=30, completion_tokens=9)] * 2
                      ) as server:
        chat = make_chat_model(Settings(model="gpt-4o-mini", openai_api_key="sk-test", openai_base_url=server.base_url))
        streamed = await astream_reply(chat, [], on_piece=lambda piece: None, restarts=0)
        whole = await chat.ainvoke("x")
    assert streamed.tool_calls == whole.tool_calls == [
        {"name": "submit_finding", "args": answer, "id": "c1", "type": "tool_call"}]
    assert streamed.usage_metadata is not None and whole.usage_metadata is not None
    assert (streamed.usage_metadata["input_tokens"], streamed.usage_metadata["output_tokens"]) == (30, 9)
    assert streamed.response_metadata["model_name"] == whole.response_metadata["model_name"]


async def test_a_stream_cut_mid_reply_starts_over_within_the_retry_budget(home: Any) -> None:
    with OpenAIServer(script=[cut(text("x" * 400)), text("the whole reply")]) as server:
        chat = make_chat_model(Settings(model="gpt-4o-mini", openai_api_key="sk-test", openai_base_url=server.base_url))
        pieces: list[Any] = []
        reply = await astream_reply(chat, [], on_piece=pieces.append, restarts=1)
        assert reply.content == "the whole reply" and len(server.requests) == 2
        assert pieces.count(None) == 1, "the listener is told to drop the cut-off pieces"
        assert "".join(p.content for p in pieces[pieces.index(None) + 1:]) == "the whole reply"

        server.script += [cut(text("y" * 400)), cut(text("z" * 400))]
        try:
            await astream_reply(chat, [], on_piece=lambda piece: None, restarts=1)
        except Exception as exc:  # noqa: BLE001  (the transport's error, mapped to a ModelError by the agent)
            failure: Exception | None = exc
        else:
            failure = None
        assert failure is not None and len(server.requests) == 4, "restarts + 1 requests, no more"


class _State(TypedDict, total=False):
    goal: str
    finding: dict[str, Any]


async def test_stream_mode_messages_on_a_compiled_graph_yields_the_agents_tokens(home: Any) -> None:
    analyst = Agent(role="analyst", tools=[], output=Finding)

    async def analyse(state: _State) -> _State:
        found = await analyst.run(goal=state["goal"])
        return {"finding": found.model_dump()}

    builder = StateGraph(_State)
    builder.add_node("analyse", analyse, metadata={"agent": "analyst"})
    builder.add_edge(START, "analyse")
    builder.add_edge("analyse", END)
    answer = {"summary": "payments-api p95 is 224 ms, under its 300 ms target", "confidence": 0.8}
    with OpenAIServer(script=[tool_call("submit_finding", answer)]) as server:
        settings = Settings(model="gpt-4o-mini", openai_api_key="sk-test", openai_base_url=server.base_url,
                            node_retries=0)
        graph = compile(builder, checkpointer=InMemorySaver(), settings=settings)
        run = build_run_context(settings, run_id="messages-1", goal=GOAL, graph="analyse")
        assert run.stream_tokens is False  # only LangGraph's messages mode asks for the stream here
        chunks: list[tuple[Any, dict[str, Any]]] = []
        with running(run):
            async for message, metadata in graph.astream({"goal": GOAL}, {"configurable": {"thread_id": "m1"}},
                                                         stream_mode="messages"):
                chunks.append((message, metadata))
            state = await graph.aget_state({"configurable": {"thread_id": "m1"}})
    assert server.requests[0]["stream"] is True
    tokens = [m for m, meta in chunks if isinstance(m, AIMessageChunk) and meta["langgraph_node"] == "analyse"]
    assert len(tokens) > 5, "token by token, not one message at the end"
    args = "".join(c["args"] or "" for m in tokens for c in m.tool_call_chunks)
    assert json.loads(args) == answer
    assert state.values["finding"]["summary"] == answer["summary"]  # validated as ever


def test_agentmesh_run_on_a_terminal_shows_the_tokens_before_the_reply_ends(home: Any) -> None:
    with OpenAIServer(responder=slow_decision(0.05)) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTMESH_", "OPENAI_"))}
        env.update(AGENTMESH_HOME=str(home), AGENTMESH_MODEL="gpt-4o-mini", OPENAI_API_KEY="sk-test-cli",
                   OPENAI_BASE_URL=server.base_url, AGENTMESH_NODE_RETRIES="0", TTY_COMPATIBLE="1", COLUMNS="120")
        process = subprocess.Popen([sys.executable, "-m", "agentmesh", "run", "--json", GOAL], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        err = process.stderr.fileno()
        shown: list[tuple[float, bytes]] = []  # what the terminal got, and when
        reader = threading.Thread(target=lambda: shown.extend(
            (time.time(), block) for block in iter(lambda: os.read(err, 65536), b"")))
        reader.start()
        stdout = process.stdout.read()
        process.wait(timeout=600)
        reader.join()
    assert process.returncode == 0, b"".join(b for _, b in shown)[-3000:]
    assert json.loads(stdout)["status"] == "done"
    [decide] = [i for i, body in enumerate(server.requests) if _forced(body) == "submit_decision"]
    first = next(t for t, block in shown if "✎ strategist (decide)".encode() in block)
    assert first < server.ended[decide], "the terminal showed the decision's tokens while the model wrote them"


async def test_a_stream_without_usage_is_counted_by_an_estimate(home: Any) -> None:
    from langchain_openai import ChatOpenAI

    with OpenAIServer(script=[text("p95 is 224 ms " * 20)]) as server:
        chat = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test", stream_usage=False)
        reply = await astream_reply(chat, [HumanMessage("how is payments-api? " * 10)], on_piece=lambda piece: None,
                                    restarts=0)
    assert "stream_options" not in server.requests[0]  # the endpoint was not asked for usage, so sent none
    assert reply.usage_metadata is not None
    assert (reply.usage_metadata["input_tokens"], reply.usage_metadata["output_tokens"]) == (210 // 4, 280 // 4)
    assert reply.response_metadata["usage_estimated"] is True
