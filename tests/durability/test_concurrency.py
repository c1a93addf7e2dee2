"""Many goals at once: 20 goals on one service leave a world that agrees with the audit, and a policy
concurrency limit holds across concurrent goals."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from langchain_core.messages import AIMessage
from sqlalchemy import select

from agentmesh import Settings, arun_goal
from agentmesh.persistence import audit
from agentmesh.plugins.operations.world import World, _tables
from agentmesh.runtime.components import components
from agentmesh.testing.scripted import ScriptedCall, ScriptedChatModel

GOALS = [
    "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost",
    "checkout is slow, get p95 below 250 ms",
    "Checkout-api is over budget: cut its cost by 30% while keeping p95 under 400 ms",
    "Make checkout-api p95 under 200 ms",
]


async def test_twenty_concurrent_goals_on_one_service_agree_with_the_audit(home: Path) -> None:
    settings = Settings()
    results = await asyncio.gather(*(arun_goal(GOALS[i % len(GOALS)], settings=settings) for i in range(20)))
    assert [r["status"] for r in results] == ["done"] * 20
    parts = components(settings)
    calls = [c for r in results for c in audit.list_calls(parts.engine, r["run_id"])]
    # The row version each change produced is the order the world applied them in.
    scales = sorted((c for c in calls if c.tool == "scale_service" and c.status == "ok"),
                    key=lambda c: c.result["version"])
    assert scales, "no goal scaled the service"
    with parts.engine.connect() as conn:
        service = conn.execute(select(_tables.services).where(_tables.services.c.name == "checkout-api")).mappings().one()
        effects = conn.execute(select(_tables.effects.c.key)).scalars().all()
    # The last change the audit says succeeded is the state the world is in, and each change applied once.
    assert service["replicas"] == scales[-1].result["replicas"]
    assert service["version"] == 1 + len(scales)
    assert sorted(e for e in effects if e.endswith(tuple(c.tool_call_id for c in scales))) == sorted(
        f"{c.run_id}:{c.tool_call_id}" for c in scales)
    limits = parts.resources.get(World).limits.limits_for("checkout-api")
    assert limits.min_replicas <= service["replicas"] <= limits.max_replicas
    # Each audited change started from the state the previous one left: no lost update.
    assert [c.result["version"] for c in scales] == list(range(2, 2 + len(scales)))
    for before, after in zip(scales, scales[1:], strict=False):
        assert after.result["previous_replicas"] == before.result["replicas"]


SLOW_TOOL = '''
import asyncio
from agentmesh import tool

running = {"now": 0, "max": 0}

@tool(roles=["analyst"])
async def slow_report(topic: str) -> dict:
    """Write a slow report.

    Args:
        topic: What the report is about.
    """
    running["now"] += 1
    running["max"] = max(running["max"], running["now"])
    await asyncio.sleep(0.3)
    running["now"] -= 1
    return {"topic": topic, "max_concurrent_seen": running["max"]}
'''


def _play(call: ScriptedCall) -> AIMessage:
    def answer(name: str, args: dict) -> AIMessage:  # type: ignore[type-arg]
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"{name}-{len(call.results)}",
                                                   "type": "tool_call"}])

    if call.output_tool == "submit_plan":
        return answer("submit_plan", {"objective": "report", "steps": [
            {"id": "s1", "role": "analyst", "instruction": "write the report"}]})
    if call.output_tool == "submit_review":
        return answer("submit_review", {"verdict": "decide", "reason": "done"})
    if call.output_tool == "submit_decision":
        return answer("submit_decision", {"summary": "reported", "rationale": "the report was written",
                                          "confidence": 0.9, "outcome": "achieved"})
    if not call.results:
        return answer("slow_report", {"topic": "capacity"})
    return answer("submit_finding", {"summary": "report written", "confidence": 0.9})


async def test_policy_concurrency_limit_holds_across_goals(home: Path, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "reports.py").write_text(textwrap.dedent(SLOW_TOOL))
    home.mkdir(parents=True, exist_ok=True)
    policy = Path(components(Settings()).policy.source).read_text()
    (home / "policy.toml").write_text(policy.replace("[concurrency]", "[concurrency]\nslow_report = 1"))
    settings = Settings(tools_paths=[tools])
    results = await asyncio.gather(*(arun_goal("write the capacity report", settings=settings,
                                               chat_model=ScriptedChatModel(responder=_play)) for _ in range(3)))
    assert [r["status"] for r in results] == ["done"] * 3
    calls = [c for r in results for s in r["steps"] for c in s["tool_calls"] if c["tool"] == "slow_report"]
    assert all(c["status"] == "ok" for c in calls), [(c["status"], c["reason"]) for c in calls]
    seen = [c["result"]["max_concurrent_seen"] for r in results for s in r["steps"] for c in s["tool_calls"]
            if c["tool"] == "slow_report"]
    assert len(seen) == 3 and max(seen) == 1
