"""OpenTelemetry GenAI traces, exported by `agentmesh run` (a process of its own, the real langchain-openai path to a
local OpenAI-protocol server) with the standard SDK and OTLP exporters to a real OTLP receiver started here
(otlp_receiver: HTTP/protobuf and gRPC), read back and checked: one trace per goal, its root ``invoke_workflow``, one
``invoke_agent`` per executed node (parallel steps as siblings), one ``chat`` per model call with token usage and
cost, one ``execute_tool`` per audited tool call with its status; ids recorded on the run; no secret, and no
content unless asked for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import OtlpReceiver

from agentmesh.testing.offline_responder import offline_responder
from agentmesh.testing.openai_server import OpenAIServer

pytestmark = pytest.mark.slow

AGENTMESH = Path(sys.executable).parent / "agentmesh"
KEY = "sk-test-otel-traces-0123456789abcdef"
# Two parts: the optimizer acts on checkout-api while an analyst looks at search-api, at once.
GOAL = "Bring checkout-api p95 under 300 ms; also tell me whether search-api looks healthy, changing nothing there."


@pytest.fixture(scope="module", autouse=True)
def prefect_server() -> None:
    """The session's local Prefect server, started with time to spare (a fresh database migrates for minutes on a
    loaded machine)."""
    from agentmesh.runtime.prefect import ensure_local_server

    ensure_local_server(Path(os.environ["PREFECT_HOME"]), wait_s=900)


def agentmesh(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run([str(AGENTMESH), *args], capture_output=True, text=True, timeout=900,
                          env={**environ, **env})


def run_goal(goal: str, **env: str) -> dict[str, Any]:
    with OpenAIServer(responder=offline_responder, api_key=KEY) as model:
        done = agentmesh("run", goal, "--approvals", "auto", "--json", OPENAI_BASE_URL=model.base_url,
                         OPENAI_API_KEY=KEY, AGENTMESH_MODEL="gpt-4o-mini", **env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_mesh_goal_is_one_genai_trace_over_otlp_http(home: Path) -> None:
    with OtlpReceiver() as receiver:
        run = run_goal(GOAL, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_url, OTEL_SERVICE_NAME="ops-agents")
        spans = receiver.wait_for(lambda spans: any(s["name"] == "invoke_workflow mesh" for s in spans))
        raw = b"".join(receiver.raw)
    assert receiver.requests["http"] >= 1 and receiver.requests["grpc"] == 0
    assert run["status"] == "done" and run["trace_id"], run["trace_id"]
    assert {s["trace_id"] for s in spans} == {run["trace_id"]}, "one goal, one trace, named on the run"
    assert {s["resource"]["service.name"] for s in spans} == {"ops-agents"}
    by_id = {s["span_id"]: s for s in spans}

    (root,) = [s for s in spans if s["parent_span_id"] is None]
    assert root["name"] == "invoke_workflow mesh"
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
    assert root["attributes"]["agentmesh.run_id"] == run["run_id"]
    assert root["attributes"]["agentmesh.status"] == "done"
    assert root["attributes"]["gen_ai.usage.input_tokens"] == run["usage"]["input_tokens"]

    agents = [s for s in spans if s["name"].startswith("invoke_agent ")]
    assert all(s["parent_span_id"] == root["span_id"] for s in agents), "every node's span is a child of the goal's"
    assert sorted(s["span_id"] for s in agents) == sorted(step["span_id"] for step in run["steps"])
    for step in run["steps"]:
        span = by_id[step["span_id"]]
        assert span["attributes"]["gen_ai.agent.name"] == (step["agent"] or step["node"])
        assert span["attributes"]["agentmesh.node"] == step["node"]
    workers = [s for s in agents if s["attributes"]["agentmesh.node"] in ("analyst", "optimizer")]
    assert any(a["start"] < b["end"] and b["start"] < a["end"] for a in workers for b in workers if a is not b), \
        "the plan's independent steps ran at once: sibling spans that overlap"

    chats = [s for s in spans if s["name"].startswith("chat ")]
    assert len(chats) == run["usage"]["model_calls"]
    for chat in chats:
        attributes = chat["attributes"]
        assert chat["kind"] == "client" and by_id[chat["parent_span_id"]]["name"].startswith("invoke_agent ")
        assert attributes["gen_ai.operation.name"] == "chat" and attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert attributes["gen_ai.usage.input_tokens"] > 0 and attributes["gen_ai.usage.output_tokens"] > 0
        assert attributes["agentmesh.cost_usd"] > 0
        assert by_id[chat["parent_span_id"]]["attributes"]["gen_ai.agent.name"] == attributes["gen_ai.agent.name"]
    assert sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in chats) == run["usage"]["input_tokens"]
    assert sum(c["attributes"]["gen_ai.usage.output_tokens"] for c in chats) == run["usage"]["output_tokens"]

    tools = [s for s in spans if s["name"].startswith("execute_tool ")]
    audited = {call["id"]: (step, call) for step in run["steps"] for call in step["tool_calls"]}
    assert audited and sorted(s["attributes"]["gen_ai.tool.call.id"] for s in tools) == sorted(audited)
    for span in tools:
        step, call = audited[span["attributes"]["gen_ai.tool.call.id"]]
        assert span["attributes"]["gen_ai.tool.name"] == call["tool"] == span["name"].removeprefix("execute_tool ")
        assert span["attributes"]["agentmesh.tool.status"] == call["status"]
        assert span["parent_span_id"] == step["span_id"], "a tool call's span is under its step's"

    assert KEY.encode() not in raw and KEY[-10:].encode() not in raw, "the API key never leaves in a span"
    assert b"search-api looks healthy" not in raw, "contents are off by default"
    assert not any("gen_ai.output.messages" in s["attributes"] or "gen_ai.tool.call.arguments" in s["attributes"]
                   for s in spans)
    shown = agentmesh("runs", "show", run["run_id"])
    assert run["trace_id"] in shown.stdout and f"span {run['steps'][0]['span_id']}" in shown.stdout


def test_grpc_export_with_contents_asked_for_still_keeps_the_key_out(home: Path) -> None:
    goal = "Without changing anything, tell me whether notifications-worker looks healthy."
    with OtlpReceiver() as receiver:
        run = run_goal(goal, AGENTMESH_OTEL=receiver.grpc_url.replace("http://", "grpc://"),
                       AGENTMESH_OTEL_CAPTURE_CONTENT="true")
        spans = receiver.wait_for(lambda spans: any(s["name"] == "invoke_workflow mesh" for s in spans))
        raw = b"".join(receiver.raw)
    assert receiver.requests["grpc"] >= 1 and receiver.requests["http"] == 0
    assert {s["trace_id"] for s in spans} == {run["trace_id"]}
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    assert root["attributes"]["agentmesh.goal"] == goal
    chats = [s for s in spans if s["name"].startswith("chat ")]
    assert len(chats) == run["usage"]["model_calls"]
    assert all("gen_ai.output.messages" in c["attributes"] for c in chats)
    tools = [s for s in spans if s["name"].startswith("execute_tool ")]
    assert tools and all("gen_ai.tool.call.arguments" in t["attributes"] for t in tools)
    assert KEY.encode() not in raw and KEY[-10:].encode() not in raw


def test_a_bad_otel_setting_is_one_line_and_exit_2(home: Path) -> None:
    done = agentmesh("run", "how is inventory-svc doing?", "--model", "offline", AGENTMESH_OTEL="tcp://nowhere")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: AGENTMESH_OTEL must be an OTLP endpoint")
    assert "Traceback" not in done.stderr


def test_traces_off_import_nothing_of_the_sdk() -> None:
    """Off (nothing configured): no span is made and the OpenTelemetry SDK is never imported."""
    code = ("import sys\nfrom agentmesh.core import observe\nfrom agentmesh.core.settings import Settings\n"
            "from agentmesh.runtime.tracing import setup_tracing\nsetup_tracing(Settings(model='offline'))\n"
            "with observe.span('x', {}) as s: assert s is None\n"
            "assert not observe.tracing() and 'opentelemetry.sdk' not in sys.modules, sorted(sys.modules)")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
