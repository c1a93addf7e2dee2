"""The peer benchmark's harness (benchmarks/peers): its scripted model and its checks, and one smoke round.

No timing is asserted: only that every run of every variant passes its checks, and that a wrong run fails them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PEERS = Path(__file__).resolve().parent.parent / "benchmarks" / "peers"


def _workload() -> Any:
    spec = importlib.util.spec_from_file_location("peers_workload_under_test", PEERS / "workload.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _play(workload: Any, script: Any, token: str, *, output_tool: bool = False, drop: int | None = None,
          extra: int = 0) -> str:
    """A client of the scripted model: runs the tools it asks for and sends the results back."""
    tools = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in workload.TOOLS]
    if output_tool:
        tools.append({"type": "function", "function": {"name": "submit_finding",
                                                       "parameters": {"properties": {"summary": {}}}}})
    messages: list[dict[str, Any]] = [{"role": "user", "content": workload.goal(token)}]
    for _ in range(10):
        reply = script({"messages": messages, "tools": tools})
        calls = [c for c in reply.tool_calls if c.name in workload.TOOLS]
        if not calls:
            if extra:
                extra -= 1
                messages.append({"role": "user", "content": "again"})
                continue
            answer = reply.tool_calls[0].arguments["summary"] if reply.tool_calls else reply.content
            return str(answer)
        messages.append({"role": "assistant", "content": None})
        for call in calls:
            result = workload.FUNCTIONS[call.name](**call.arguments)
            content = json.dumps(result) if drop != len([m for m in messages if m["role"] == "tool"]) else "lost"
            messages.append({"role": "tool", "content": content})
    raise AssertionError("the script never answered")


def test_the_scripted_model_plays_three_tool_calls_then_answers() -> None:
    workload = _workload()
    script = workload.Script()
    answer = _play(workload, script, "ok1")
    finding = _play(workload, script, "ok2", output_tool=True)
    runs = script.take()
    assert workload.check(runs["ok1"], answer, 3) == []
    assert workload.check(runs["ok2"], finding, 3) == []
    assert "66.7%" in answer and "team-payments" in finding
    assert script.take() == {}


def test_a_wrong_run_fails_its_check() -> None:
    workload = _workload()
    script = workload.Script()
    lost = _play(workload, script, "lost", drop=1)  # the compute_reduction result never reaches the model
    extra = _play(workload, script, "extra", extra=1)  # one model request too many
    runs = script.take()
    assert any("compute_reduction" in p for p in workload.check(runs["lost"], lost, 3))
    assert any("5 model requests" in p for p in workload.check(runs["extra"], extra, 3))
    assert workload.check(runs["extra"], extra, 4) != []  # a tool call too many
    assert workload.check(None, "", 3) != []  # the model was never asked


@pytest.mark.slow
def test_one_smoke_round_of_the_harness_passes_every_check(tmp_path: Path) -> None:
    """One round at the instant model: LangGraph, agentmesh's ReAct graph (its audit checked) and, with the
    bench extra installed, Pydantic AI with PrefectDurability; the Prefect server of this test session."""
    names = ["langgraph", "agentmesh_react"]
    if importlib.util.find_spec("pydantic_ai") is not None:
        names.append("pydantic_ai_prefect")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENTMESH_"))}
    done = subprocess.run(
        [sys.executable, str(PEERS / "run.py"), "--smoke", "--variants", ",".join(names),
         "--prefect-home", os.environ["PREFECT_HOME"], "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=540, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "peers.json").read_text())
    assert result["checks"]["failed"] == {}
    assert set(result["checks"]["counted"]) == set(names)
    assert all(count == 2 for count in result["checks"]["counted"].values())  # one round, one durability run
    assert result["task_runs"]["agentmesh_react"] == 7
    assert "| agentmesh, ReAct graph via compile |" in (tmp_path / "peers.md").read_text()
