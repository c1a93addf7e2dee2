"""Property: whatever sequence of scale and refund calls arrives — any arguments, any role — the world the
gateway leaves respects every policy limit, and every call has exactly one audit record.

The policy here tightens the daily refund budget (450) so a sequence can reach it; the cost ceiling (60 an
hour, 47.30 at the start) and the per-ticket cap (200) are the default ones.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import GatewayHarness, write_policy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from agentmesh.persistence.audit import FINAL
from agentmesh.plugins.operations.world import _tables as tables

SERVICES = ["checkout-api", "payments-api", "search-api", "recommendations", "inventory-svc", "auth-api",
            "notifications-worker"]
TICKETS = [f"T-{n}" for n in range(1001, 1041)]
ROLES = ["optimizer", "optimizer", "optimizer", "analyst", "innovator", "strategist", "intruder"]

service = st.one_of(st.sampled_from(SERVICES), st.sampled_from(["nope", "", "CHECKOUT-API", " checkout-api"]),
                    st.text(max_size=70), st.integers(), st.none())
replicas = st.one_of(st.integers(0, 25), st.integers(-10, 10**6), st.integers(-(2**70), 2**70),
                     st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["6", "six", "1e4", "", True]),
                     st.none(), st.lists(st.integers(), max_size=2))
ticket_id = st.one_of(st.sampled_from(TICKETS), st.sampled_from(["T-9999", "", "t-1001", "T-1008 ", "T" * 40]),
                      st.text(max_size=40), st.integers(), st.none())
refund = st.one_of(st.sampled_from([0, 0.01, 50, 199.99, 200, 200.01, 450, 5000, 1e6, 1e300, -1, -0.0]),
                   st.floats(min_value=-1e7, max_value=1e7), st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(-10, 300), st.text(max_size=6), st.none())
resolution = st.one_of(st.just("Refunded, sorry."), st.text(max_size=30), st.none(), st.integers())


def arguments(required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]) -> Any:
    every = {**required, **optional}
    return st.one_of(
        st.fixed_dictionaries(required, optional=optional),                                  # well-formed keys
        st.fixed_dictionaries({}, optional={**every, "extra": st.integers(), "ctx": st.text(max_size=5)}),
        st.one_of(st.none(), st.lists(st.integers(), max_size=3), st.text(max_size=10)),      # not an object
    )


calls = st.lists(
    st.tuples(
        st.sampled_from(["scale_service", "resolve_ticket"]),
        st.sampled_from(ROLES),
        arguments({"service": service, "replicas": replicas}, {}),
        arguments({"ticket_id": ticket_id, "resolution": resolution}, {"refund_usd": refund}),
    ),
    min_size=1,
    max_size=14,
)


@pytest.fixture
def gateway_factory(home: Path, make_gateway: Any) -> Any:
    write_policy(home, lambda text: text.replace("daily_refund_budget_usd = 1000.0", "daily_refund_budget_usd = 450.0"))
    return make_gateway


class Restore:
    """Puts back what scale and refund calls change, in milliseconds (``World.reset`` re-profiles every sample
    dataset, ~0.5 s, too slow for every example); checked against the full snapshot once."""

    def __init__(self, world: Any) -> None:
        self.world = world
        with world.engine.connect() as conn:
            self.services = [dict(r) for r in conn.execute(select(tables.services)).mappings()]
            self.tickets = [dict(r) for r in conn.execute(select(tables.tickets)).mappings()]
        self.snapshot = world.snapshot()

    def __call__(self) -> None:
        with self.world.engine.begin() as conn:
            for table in (tables.refunds, tables.effects, tables.notifications, tables.services, tables.tickets):
                conn.execute(delete(table))
            conn.execute(insert(tables.services), self.services)
            conn.execute(insert(tables.tickets), self.tickets)
        assert self.world.snapshot() == self.snapshot


@pytest.fixture
def restore(gateway_factory: Any) -> Restore:
    world = gateway_factory().world
    world.reset()
    return Restore(world)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(sequence=calls)
def test_any_scale_and_refund_calls_keep_the_world_within_policy(gateway_factory: Any, restore: Restore,
                                                                 sequence: list[tuple[str, str, Any, Any]]) -> None:
    gw: GatewayHarness = gateway_factory()
    restore()
    start = {s["name"]: s["replicas"] for s in gw.world.snapshot()["services"]}
    policy = gw.world.limits  # the world's table of the policy

    async def play() -> list[dict[str, Any]]:
        answers = []
        for tool, role, scale_args, resolve_args in sequence:
            args = scale_args if tool == "scale_service" else resolve_args
            answers.append(await gw.call(tool, args, agent=role))
        return answers

    answers = asyncio.run(play())
    world = gw.world.snapshot()

    # Every limit holds.
    for s in world["services"]:
        limits = policy.limits_for(s["name"])
        assert limits.min_replicas <= s["replicas"] <= limits.max_replicas, s
    assert world["total_hourly_cost_usd"] <= policy.hourly_cost_ceiling_usd + 1e-9
    for t in world["tickets"]:
        assert 0 <= t["refund_total_usd"] <= policy.refund_cap_usd + 1e-9, t
    assert world["refunds_total_usd"] <= policy.daily_refund_budget_usd + 1e-9

    # Exactly one finished audit record per call, with the status the model was told.
    records = gw.records()
    assert sorted(r.tool_call_id for r in records) == sorted(gw.attempted)
    assert len(set(gw.attempted)) == len(sequence)
    by_id = {r.tool_call_id: r for r in records}
    for call_id, answer in zip(gw.attempted, answers, strict=True):
        record = by_id[call_id]
        assert record.status in FINAL and record.ended is not None, record
        assert record.status == answer["status"]

    # The world is exactly what the calls the audit calls `ok` did: nothing else changed it.
    expected = dict(start)
    refunds: dict[str, float] = {}
    for record in records:
        if record.status != "ok":
            continue
        assert record.agent == "optimizer", record
        if record.tool == "scale_service":
            limits = policy.limits_for(record.result["service"])
            assert abs(record.result["replicas"] - record.result["previous_replicas"]) <= limits.max_change_per_call
            assert record.result["previous_replicas"] == expected[record.result["service"]]
            expected[record.result["service"]] = record.result["replicas"]
        else:
            refunds[record.result["ticket_id"]] = refunds.get(record.result["ticket_id"], 0) + record.result["refund_usd"]
    assert {s["name"]: s["replicas"] for s in world["services"]} == expected
    for t in world["tickets"]:
        assert t["refund_total_usd"] == pytest.approx(refunds.get(t["id"], 0.0))
        if t["id"] not in refunds and not any(r.status == "ok" and r.result.get("ticket_id") == t["id"]
                                              for r in records):
            assert t["status"] == "open"


def test_the_strategies_reach_every_outcome(gateway_factory: Any) -> None:
    """The property above means little unless its calls both succeed and get refused; check they can."""
    gw: GatewayHarness = gateway_factory()
    gw.world.reset()
    ids = itertools.count()

    async def play() -> set[str]:
        seen = set()
        for args in ({"service": "checkout-api", "replicas": 6}, {"service": "checkout-api", "replicas": 99},
                     {"service": "checkout-api", "replicas": float("nan")}, {"service": "nope", "replicas": 3}):
            seen.add((await gw.call("scale_service", args, call_id=f"p{next(ids)}"))["status"])
        for n, amount in enumerate([200, 200, 60]):
            answer = await gw.call("resolve_ticket", {"ticket_id": TICKETS[n], "resolution": "ok", "refund_usd": amount},
                                   call_id=f"p{next(ids)}")
            seen.add(answer["status"])
        return seen

    assert asyncio.run(play()) == {"ok", "refused", "invalid", "failed"}
    snapshot = gw.world.snapshot()
    assert snapshot["refunds_total_usd"] == 400  # the third refund broke the daily budget of 450
