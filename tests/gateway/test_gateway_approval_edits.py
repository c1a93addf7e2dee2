"""Approve with edited arguments: a person says "yes, but 5 replicas, not 8". The edited call passes the gateway
again (validation, role, scope, the domain's limits) before it runs; the audit keeps the model's arguments, the
edit and who made it; the model hears what was done. Edits arrive through ``aapprove`` (the CLI, HTTP and chat
all call it) and through LangGraph's ``Command(resume={"approved": True, "args": {...}})``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gateway_harness import GatewayHarness, MeshScript, write_policy
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from test_gateway_approvals import checkout_replicas, effects_of, scale_records

import agentmesh
from agentmesh.core.exceptions import UserError
from agentmesh.core.settings import Settings
from agentmesh.plugins.operations.world import World
from agentmesh.runtime.approvals import aapprove
from agentmesh.runtime.components import components

ASKED = {"service": "checkout-api", "replicas": 8}


@pytest.fixture
def approval_policy(home: Path) -> Path:
    return write_policy(home, lambda text: text.replace("approval_required = []",
                                                        'approval_required = ["scale_service"]'))


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> MeshScript:
    """The optimizer asks to scale checkout-api (4 replicas) to 8, then reads its metrics."""
    script = MeshScript(steps={"optimizer": [("scale_service", ASKED),
                                             ("get_service_metrics", {"service": "checkout-api"})]})
    model = script.model()
    monkeypatch.setattr("agentmesh.models.make_chat_model", lambda settings, model_name=None, **kw: model)
    return script


async def start_paused(settings: Settings) -> dict[str, Any]:
    paused = await agentmesh.arun_goal("Scale checkout-api up, it is overloaded", settings=settings, approvals="wait")
    assert paused["status"] == "waiting_approval", paused["error"]
    (pending,) = paused["pending_approvals"]
    assert (pending["tool"], pending["args"]) == ("scale_service", ASKED)
    assert checkout_replicas(settings) == 4
    return paused


async def test_an_approver_edits_scale_service_from_8_to_5_and_the_world_ends_at_5(
        home: Path, approval_policy: Path, script: MeshScript) -> None:
    settings = Settings(model="offline", node_retries=0)
    paused = await start_paused(settings)

    done = await aapprove(paused["run_id"], approved=True, approver="alice", reason="5 is enough",
                          args={"replicas": 5}, settings=settings)

    assert done["status"] == "done", done["error"]
    assert checkout_replicas(settings) == 5
    assert effects_of(settings, paused["run_id"]) == 1
    (record,) = scale_records(settings, paused["run_id"])
    # The audit: what the model asked for, what the approver changed it to, and who.
    assert record.args == ASKED
    assert record.edited_args == {"service": "checkout-api", "replicas": 5}
    assert (record.status, record.approval, record.approver, record.approval_reason) == (
        "ok", "approved", "alice", "5 is enough")
    assert (record.result["previous_replicas"], record.result["replicas"]) == (4, 5)
    # The model hears that a person changed its call, and what ran.
    heard = script.seen["optimizer"][0]
    assert heard["status"] == "ok"
    assert heard["edited"] == {"by": "alice", "args": {"service": "checkout-api", "replicas": 5}}
    # The run shows what was done, and what had been asked.
    (action,) = done["decision"]["actions"]
    assert action["args"] == {"service": "checkout-api", "replicas": 5}
    (shown,) = [c for s in done["steps"] for c in s["tool_calls"] if c["tool"] == "scale_service"]
    assert shown["edited"] == {"by": "alice", "asked": ASKED}
    events = [e for e in agentmesh_events(settings, paused["run_id"]) if e.get("tool") == "scale_service"]
    assert events[-1]["type"] == "tool_result" and events[-1]["edited"]["args"]["replicas"] == 5


async def test_an_edit_asking_for_more_than_the_policy_allows_is_refused_and_audited(
        home: Path, approval_policy: Path, script: MeshScript) -> None:
    settings = Settings(model="offline", node_retries=0)
    paused = await start_paused(settings)

    # checkout-api may change by at most 6 replicas a call and run at most 12 (the policy's [world.services]).
    done = await aapprove(paused["run_id"], approved=True, approver="alice", args={"replicas": 14},
                          settings=settings)

    assert done["status"] == "done", done["error"]
    assert checkout_replicas(settings) == 4, "nothing changed"
    assert effects_of(settings, paused["run_id"]) == 0
    (record,) = scale_records(settings, paused["run_id"])
    assert (record.args, record.edited_args) == (ASKED, {"service": "checkout-api", "replicas": 14})
    assert (record.status, record.approval, record.approver) == ("refused", "approved", "alice")
    assert record.reason.startswith("as edited by alice: scale_service refused:"), record.reason
    assert "12" in record.reason
    assert script.seen["optimizer"][0]["status"] == "refused"
    assert done["decision"]["actions"] == []


async def test_an_edit_that_moves_the_call_outside_the_goals_scope_is_refused(
        home: Path, approval_policy: Path, script: MeshScript) -> None:
    settings = Settings(model="offline", node_retries=0)
    paused = await start_paused(settings)
    payments = replicas_of(settings, "payments-api")

    done = await aapprove(paused["run_id"], approved=True, approver="alice",
                          args={"service": "payments-api", "replicas": 5}, settings=settings)

    assert done["status"] == "done", done["error"]
    assert (checkout_replicas(settings), replicas_of(settings, "payments-api")) == (4, payments)
    (record,) = scale_records(settings, paused["run_id"])
    assert record.status == "refused"
    assert "payments-api is outside the goal's scope" in record.reason
    assert "nobody was asked to approve that" in record.reason


async def test_bad_edits_are_one_line_errors_and_leave_the_call_waiting(
        home: Path, approval_policy: Path, script: MeshScript) -> None:
    settings = Settings(model="offline", node_retries=0)
    paused = await start_paused(settings)
    run_id = paused["run_id"]

    cases: list[tuple[dict[str, Any], str]] = [
        ({"args": {"replicaz": 5}}, "scale_service takes no argument 'replicaz' (did you mean 'replicas'?)"),
        ({"args": {"replicas": "many"}}, "replicas: Input should be a valid integer"),
        ({"args": [5]}, "must be a JSON object"),
        ({"args": {"replicas": 5}, "approved": False}, "a rejection takes no arguments"),
    ]
    for kwargs, words in cases:
        with pytest.raises(UserError) as caught:
            await aapprove(run_id, approver="alice", settings=settings, **{"approved": True, **kwargs})
        assert words in str(caught.value) and "\n" not in str(caught.value)

    (record,) = scale_records(settings, run_id)
    assert (record.status, record.approval, record.edited_args) == ("pending_approval", "pending", None)
    assert checkout_replicas(settings) == 4


# -- Command(resume=...) ------------------------------------------------------------------------------------


async def test_a_langgraph_resume_value_can_carry_edited_arguments(
        home: Path, approval_policy: Path, make_gateway: Any) -> None:
    """A graph whose node calls the gateway: it pauses on LangGraph's interrupt(), and Command(resume=...) with
    ``args`` approves the call with them — checked again, recorded, and applied."""
    harness: GatewayHarness = make_gateway(approvals="wait")

    graph = one_call_graph(harness, ASKED).compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "edit-by-resume"}}
    first = await graph.ainvoke({"reply": {}}, config)
    (pause,) = first["__interrupt__"]
    assert (pause.value["tool"], pause.value["args"]) == ("scale_service", ASKED)

    final = await graph.ainvoke(Command(resume={"approved": True, "args": {"replicas": 6}}), config)

    assert final["reply"]["status"] == "ok"
    assert final["reply"]["edited"] == {"by": "resume", "args": {"service": "checkout-api", "replicas": 6}}
    record = harness.record("call-edit")
    assert (record.args, record.edited_args, record.approver) == (ASKED, final["reply"]["edited"]["args"], "resume")
    assert world_replicas(harness.world, "checkout-api") == 6


async def test_a_resume_whose_edit_is_invalid_rejects_the_call(
        home: Path, approval_policy: Path, make_gateway: Any) -> None:
    harness: GatewayHarness = make_gateway(approvals="wait")
    graph = one_call_graph(harness, ASKED).compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "bad-edit-by-resume"}}
    await graph.ainvoke({"reply": {}}, config)

    final = await graph.ainvoke(Command(resume={"approved": True, "args": {"replicas": -3, "force": True}}), config)

    assert final["reply"]["status"] == "rejected"
    assert "the edit could not be applied: scale_service takes no argument 'force'" in final["reply"]["error"]
    record = harness.record("call-edit")
    assert (record.status, record.approval, record.edited_args) == ("rejected", "rejected", None)
    assert world_replicas(harness.world, "checkout-api") == 4


# -- helpers --------------------------------------------------------------------------------------------


def one_call_graph(harness: GatewayHarness, args: dict[str, Any]) -> StateGraph:
    from typing import TypedDict

    class State(TypedDict):
        reply: dict[str, Any]

    async def act(state: State) -> dict[str, Any]:
        return {"reply": await harness.call("scale_service", args, call_id="call-edit")}

    graph = StateGraph(State)
    graph.add_node("act", act)
    graph.add_edge(START, "act")
    graph.add_edge("act", END)
    return graph


def replicas_of(settings: Settings, name: str) -> int:
    return world_replicas(components(settings).resources.get(World), name)


def agentmesh_events(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    from agentmesh.persistence.events import event_log

    return event_log(components(settings).engine).read(run_id)


def world_replicas(world: World, name: str) -> int:
    return next(s["replicas"] for s in world.snapshot()["services"] if s["name"] == name)
