"""Idempotency: run id + tool call id is the key. A repeated call returns the recorded result; a crash
between the audit's begin and finish, then a re-call, applies the side effect once."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_harness import GatewayHarness

from agentmesh.persistence import audit


class Crash(BaseException):
    """Stands in for the process dying (not an Exception: nothing in the gateway may swallow it)."""


def refund_of(gw: GatewayHarness, ticket: str) -> float:
    return next(t["refund_total_usd"] for t in gw.world.snapshot()["tickets"] if t["id"] == ticket)


def outbox(gw: GatewayHarness) -> list[str]:
    return [n["message"] for n in gw.world.list_notifications()]


async def test_the_same_call_twice_executes_once(make_gateway: Any) -> None:
    gw: GatewayHarness = make_gateway(run_id="run-a")
    args = {"ticket_id": "T-1002", "resolution": "Refunded the damaged item.", "refund_usd": 50}

    first = await gw.call("resolve_ticket", args, call_id="c1")
    again = await gw.call("resolve_ticket", args, call_id="c1")
    other_args = await gw.call("resolve_ticket", {**args, "refund_usd": 90}, call_id="c1")

    assert first["status"] == "ok" and first["result"]["refund_total_usd"] == 50
    assert again == first == other_args  # the recorded result, not a second refund (nor "already resolved")
    assert refund_of(gw, "T-1002") == 50
    (record,) = gw.records()
    assert (record.tool_call_id, record.status) == ("c1", "ok")


async def test_the_key_includes_the_run(make_gateway: Any) -> None:
    one, two = make_gateway(run_id="run-a"), make_gateway(run_id="run-b")
    message = {"message": "checkout-api scaled", "severity": "info"}

    await one.call("notify_operations", message, call_id="c1")
    await two.call("notify_operations", message, call_id="c1")
    await one.call("notify_operations", message, call_id="c1")

    assert outbox(one) == ["checkout-api scaled", "checkout-api scaled"]
    assert len(one.records()) == len(two.records()) == 1


async def test_a_refused_call_repeated_is_not_retried(make_gateway: Any) -> None:
    gw: GatewayHarness = make_gateway()
    args = {"service": "checkout-api", "replicas": 99}
    first = await gw.call("scale_service", args, call_id="c1")
    second = await gw.call("scale_service", {"service": "checkout-api", "replicas": 6}, call_id="c1")
    assert first["status"] == second["status"] == "refused"
    assert second == first
    assert next(s["replicas"] for s in gw.world.snapshot()["services"] if s["name"] == "checkout-api") == 4


@pytest.mark.parametrize("tool", ["resolve_ticket", "notify_operations", "scale_service"])
async def test_a_crash_after_the_side_effect_then_a_recall_applies_it_once(
    make_gateway: Any, monkeypatch: pytest.MonkeyPatch, tool: str
) -> None:
    gw: GatewayHarness = make_gateway(run_id="run-crash")
    args = {
        "resolve_ticket": {"ticket_id": "T-1002", "resolution": "Refunded.", "refund_usd": 50},
        "notify_operations": {"message": "deploy paused", "severity": "warning"},
        "scale_service": {"service": "checkout-api", "replicas": 6},
    }[tool]
    finish = audit.finish_call

    def crash_on_success(engine: Any, run_id: str, call_id: str, **values: Any) -> None:
        if values.get("status") == "ok":
            raise Crash("the process died after the world changed, before the audit was finished")
        finish(engine, run_id, call_id, **values)

    monkeypatch.setattr(audit, "finish_call", crash_on_success)
    with pytest.raises(Crash):
        await gw.call(tool, args, call_id="c1")
    (left,) = gw.records()
    assert left.status == "running" and left.ended is None
    monkeypatch.setattr(audit, "finish_call", finish)
    changed = gw.world.snapshot()

    answer = await gw.call(tool, args, call_id="c1")

    assert answer["status"] == "ok"
    assert answer["result"]["replayed"] is True  # the world's key answered; nothing applied twice
    assert gw.world.snapshot() == changed
    assert refund_of(gw, "T-1002") == (50 if tool == "resolve_ticket" else 0)
    assert outbox(gw) == (["deploy paused"] if tool == "notify_operations" else [])
    (record,) = gw.records()
    assert record.status == "ok" and record.ended is not None


async def test_a_crash_before_the_side_effect_then_a_recall_applies_it_once(make_gateway: Any) -> None:
    gw: GatewayHarness = make_gateway(run_id="run-early")
    # What the gateway writes first; the process then died before the tool ran.
    audit.begin_call(gw.run.engine, run_id="run-early", tool_call_id="c1", step_key=gw.scope.key, node="optimizer",
                     agent="optimizer", tool="resolve_ticket", risk="write", args=None, status="running", dry_run=False)

    answer = await gw.call("resolve_ticket", {"ticket_id": "T-1002", "resolution": "Refunded.", "refund_usd": 50},
                           call_id="c1")

    assert answer["status"] == "ok" and "replayed" not in answer["result"]
    assert refund_of(gw, "T-1002") == 50
    (record,) = gw.records()
    assert record.status == "ok"
