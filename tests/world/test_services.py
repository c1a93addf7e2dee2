from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentmesh.core.exceptions import NotFoundError, PolicyViolation
from agentmesh.plugins.operations.world import World
from agentmesh.plugins.operations.world.queueing import SATURATED_P95_MS, load


def test_sample_has_varied_services(call) -> None:
    result = call("list_services")
    by_name = {s["name"]: s for s in result["services"]}
    assert len(by_name) >= 6
    assert {s["status"] for s in result["services"]} >= {"healthy", "overloaded", "over-provisioned", "erroring"}
    checkout = call("get_service_metrics", service="checkout-api")
    assert 850 <= checkout["p95_ms"] <= 1000
    assert checkout["max_replicas"] == 12
    assert result["total_hourly_cost_usd"] < result["hourly_cost_ceiling_usd"]


def test_scaling_changes_the_metrics_read_next(call) -> None:
    before = call("get_service_metrics", service="checkout-api")
    result = call("scale_service", service="checkout-api", replicas=6)
    after = call("get_service_metrics", service="checkout-api")
    assert result["previous_replicas"] == 4 and after["replicas"] == 6
    assert after["p95_ms"] < 300 < before["p95_ms"]
    assert after["cpu_pct"] < before["cpu_pct"]
    assert after["hourly_cost"] < 2 * before["hourly_cost"]
    assert after["version"] == before["version"] + 1


def test_simulate_changes_nothing(call, world: World) -> None:
    before = world.snapshot()["services"]
    sim = call("simulate_scaling", service="checkout-api", replicas=5, agent="innovator")
    assert sim["simulated"]["p95_ms"] < 300 and sim["allowed_by_policy"]
    too_many = call("simulate_scaling", service="checkout-api", replicas=40)
    assert not too_many["allowed_by_policy"] and "between 2 and 12" in too_many["policy_problems"][0]
    assert world.snapshot()["services"] == before


@pytest.mark.parametrize(
    ("replicas", "message"),
    [(13, "between 2 and 12"), (1, "between 2 and 12"), (11, "at most 6 replicas per call")],
)
def test_limits_refuse(call, world: World, replicas: int, message: str) -> None:
    with pytest.raises(PolicyViolation, match=message):
        call("scale_service", service="checkout-api", replicas=replicas)
    assert call("get_service_metrics", service="checkout-api")["replicas"] == 4


def test_hourly_cost_ceiling(call) -> None:
    # 4 -> 10 replicas is within range and change per call, but adds $15.00/h to $47.30/h: over $60.00.
    with pytest.raises(PolicyViolation, match=r"above the ceiling of \$60.00 \(checkout-api fits at most 9 replicas\)"):
        call("scale_service", service="checkout-api", replicas=10)
    assert call("scale_service", service="checkout-api", replicas=9)["total_hourly_cost_usd"] == 59.8


def test_idempotent_replay_changes_nothing_twice(call, world: World) -> None:
    first = call("scale_service", service="checkout-api", replicas=6, call_id="same")
    again = call("scale_service", service="checkout-api", replicas=6, call_id="same")
    assert again["replayed"] is True and "replayed" not in first
    assert {k: v for k, v in again.items() if k != "replayed"} == first
    assert call("get_service_metrics", service="checkout-api")["version"] == 2


def test_unknown_service_and_bad_arguments(call, registry) -> None:
    with pytest.raises(NotFoundError, match="known services: auth-api"):
        call("get_service_metrics", service="nope")
    with pytest.raises(ValidationError):
        registry.get("scale_service").args_model.model_validate({"service": "checkout-api", "replicas": -1})
    with pytest.raises(ValidationError):
        registry.get("scale_service").args_model.model_validate({"service": "checkout-api", "replicas": 2, "x": 1})


def test_queueing_model_is_monotone_and_saturates() -> None:
    args = dict(arrival_rps=76.4, service_rps=20.0, base_latency_ms=140.0, base_error_rate=0.002)
    p95 = [load(replicas=c, **args).p95_ms for c in range(3, 12)]
    assert p95[0] == SATURATED_P95_MS
    assert p95 == sorted(p95, reverse=True)
    assert load(replicas=4, **args).error_rate > load(replicas=6, **args).error_rate


def _leak(world: World, service: str) -> None:
    from sqlalchemy import update

    from agentmesh.plugins.operations.world import _tables as t

    with world.engine.begin() as conn:
        conn.execute(update(t.services).where(t.services.c.name == service).values(fault="memory_leak"))


def test_a_memory_leak_is_fixed_by_a_restart_not_by_replicas(call, world: World) -> None:
    _leak(world, "auth-api")
    leaking = call("get_service_metrics", service="auth-api")
    assert leaking["status"] == "erroring" and leaking["memory_pct"] >= 90 and leaking["p95_ms"] > 400
    # The release is not the cause: it errs no more than the one before it.
    assert leaking["release_error_rate"] <= leaking["previous_release_error_rate"]
    doubled = call("simulate_scaling", service="auth-api", replicas=6, agent="innovator")["simulated"]
    assert doubled["status"] == "erroring" and doubled["error_rate"] > 0.02
    result = call("restart_service", service="auth-api")
    assert result["cleared_fault"] == "memory_leak" and result["after"]["status"] == "healthy"
    after = call("get_service_metrics", service="auth-api")
    assert after["status"] == "healthy" and after["memory_pct"] < 90 and after["p95_ms"] < 100
    assert (after["deployed_version"], after["replicas"]) == ("v4.1.0", 3)


def test_a_bad_release_is_fixed_by_a_rollback_not_by_a_restart(call) -> None:
    search = call("get_service_metrics", service="search-api")
    assert search["status"] == "erroring" and search["memory_pct"] < 90
    assert search["release_error_rate"] > 10 * search["previous_release_error_rate"]
    restarted = call("restart_service", service="search-api")
    assert restarted["cleared_fault"] is None and restarted["after"] == restarted["before"]
    assert call("get_service_metrics", service="search-api")["status"] == "erroring"
    result = call("rollback_service", service="search-api")
    assert (result["previous_version"], result["deployed_version"]) == ("v5.2.0-rc1", "v5.1.4")
    after = call("get_service_metrics", service="search-api")
    assert after["status"] == "healthy" and after["error_rate"] < 0.01 and after["replicas"] == 3
    assert after["deployed_version"] == "v5.1.4" and after["previous_version"] is None
    with pytest.raises(ValueError, match="search-api has no earlier release to roll back to"):
        call("rollback_service", service="search-api")


def test_restart_and_rollback_replay_by_key(call) -> None:
    first = call("rollback_service", service="checkout-api", call_id="r")
    again = call("rollback_service", service="checkout-api", call_id="r")
    assert again["replayed"] is True and {k: v for k, v in again.items() if k != "replayed"} == first
    assert call("get_service_metrics", service="checkout-api")["deployed_version"] == "v2.13.2"
    call("restart_service", service="checkout-api", call_id="s")
    call("restart_service", service="checkout-api", call_id="s")
    assert call("get_service_metrics", service="checkout-api")["version"] == 3
    with pytest.raises(ValueError, match="already used by rollback_service"):
        call("restart_service", service="checkout-api", call_id="r")
    with pytest.raises(NotFoundError, match="no service 'nope'"):
        call("restart_service", service="nope")


def test_only_the_optimizer_restarts_and_rolls_back_and_a_policy_can_gate_rollbacks(registry) -> None:
    from agentmesh.gateway.policy import Policy
    from agentmesh.plugins.operations import plugin

    policy = Policy.default(sections=plugin.policy_tables)
    for name in ("restart_service", "rollback_service"):
        assert policy.allowed_roles(registry.get(name)) == ("optimizer",)
        assert not policy.needs_approval(registry.get(name))  # the self-healing loop runs unattended
    gated = policy.model_copy(update={"approval_required": ["rollback_service"]})
    assert gated.needs_approval(registry.get("rollback_service"))
    assert not gated.needs_approval(registry.get("restart_service"))
