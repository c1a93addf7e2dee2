"""A Prefect flow retry resumes the goal from its checkpoint: finished nodes and side effects are reused."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage

from agentmesh import Settings, arun_goal
from agentmesh.plugins.operations.world import World
from agentmesh.runtime.components import components
from agentmesh.testing.scripted import ScriptedCall, ScriptedChatModel


class FlakyStrategist:
    """Plays a one-step mesh that scales checkout-api; the decision fails the first time it is asked for."""

    def __init__(self) -> None:
        self.decisions_asked = 0

    def __call__(self, call: ScriptedCall) -> AIMessage:
        def answer(name: str, args: dict) -> AIMessage:  # type: ignore[type-arg]
            return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"{name}-{len(call.results)}",
                                                       "type": "tool_call"}])

        if call.output_tool == "submit_plan":
            return answer("submit_plan", {"objective": "scale", "steps": [
                {"id": "s1", "role": "optimizer", "instruction": "scale checkout-api to 6"}]})
        if call.output_tool == "submit_review":
            return answer("submit_review", {"verdict": "decide", "reason": "done"})
        if call.output_tool == "submit_decision":
            self.decisions_asked += 1
            if self.decisions_asked == 1:
                raise RuntimeError("the decision node crashed")
            return answer("submit_decision", {"summary": "scaled", "rationale": "p95 was too high",
                                              "confidence": 0.8, "outcome": "achieved"})
        if not call.results:
            return answer("scale_service", {"service": "checkout-api", "replicas": 6})
        return answer("submit_finding", {"summary": "scaled to 6", "confidence": 0.9})


async def test_a_flow_retry_reuses_finished_work(home: Path) -> None:
    settings = Settings(flow_retries=1, node_retries=0)
    player = FlakyStrategist()
    model = ScriptedChatModel(responder=player)
    result = await arun_goal("checkout-api is slow; scale it", settings=settings, chat_model=model)
    assert result["status"] == "done" and player.decisions_asked == 2
    scales = [c for s in result["steps"] for c in s["tool_calls"] if c["tool"] == "scale_service"]
    assert [c["status"] for c in scales] == ["ok"]
    world = components(settings).resources.get(World).snapshot()
    checkout = next(s for s in world["services"] if s["name"] == "checkout-api")
    assert checkout["replicas"] == 6 and checkout["version"] == 2  # changed once
    # The optimizer's model calls were not made again on the retry: only the strategist's decision was re-asked.
    asked = [c.role for c in model.calls]
    assert asked.count("optimizer") == 2


async def test_a_goal_started_again_too_often_is_failed_not_run_again(home: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A deployed goal put back on its pool after its worker died (agentmesh.deployments.ensure_recovery) runs
    again in the same flow run; past goal_restarts it is failed with the way on, not run a fourth time. Prefect's
    own runtime seam reports the flow run's run count: 5 runs, one of them a flow retry, are 3 restarts."""
    monkeypatch.setenv("PREFECT__RUNTIME__FLOW_RUN__RUN_COUNT", "5")
    settings = Settings(flow_retries=1, node_retries=0, goal_restarts=2)
    player = FlakyStrategist()
    result = await arun_goal("checkout-api is slow; scale it", settings=settings,
                             chat_model=ScriptedChatModel(responder=player))
    assert result["status"] == "failed" and player.decisions_asked == 1
    assert "started 3 times after its worker died (goal_restarts is 2)" in result["error"]
    assert f"agentmesh runs resume {result['run_id']}" in result["error"]
    monkeypatch.setenv("PREFECT__RUNTIME__FLOW_RUN__RUN_COUNT", "4")  # 2 restarts: within the limit, it goes on
    settings = Settings(flow_retries=1, node_retries=0, goal_restarts=2)
    player = FlakyStrategist()
    result = await arun_goal("checkout-api is slow; scale it", settings=settings,
                             chat_model=ScriptedChatModel(responder=player))
    assert result["status"] == "done" and player.decisions_asked == 2
