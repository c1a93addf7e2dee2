"""The offline optimizer's repair rules against the real sample world: the repair the metrics point at, only it."""

from __future__ import annotations

import pytest
from offline_harness import StepRun
from sqlalchemy import update

from agentmesh.plugins.operations.world import World
from agentmesh.plugins.operations.world import _tables as t

WRITES = ("scale_service", "restart_service", "rollback_service")


def _set(world: World, name: str, **values: object) -> None:
    if not values:
        return
    with world.engine.begin() as conn:
        conn.execute(update(t.services).where(t.services.c.name == name).values(**values))


def _writes(calls: list) -> list[tuple[str, str, str]]:
    return [(c[0], c[1].get("service"), c[2]["status"]) for c in calls if c[0] in WRITES]


@pytest.mark.parametrize(("service", "change", "repair"), [
    ("auth-api", {"fault": "memory_leak"}, "restart_service"),
    ("search-api", {}, "rollback_service"),  # the sample's release candidate errs; v5.1.4 did not
    ("payments-api", {"base_latency_ms": 650.0, "deployed_version": "v7.4.0",
                      "releases": [{"version": "v7.3.1", "base_latency_ms": 180.0, "base_error_rate": 0.001}]},
     "rollback_service"),
    ("checkout-api", {}, "scale_service"),  # overloaded: capacity is the fix
])
def test_the_optimizer_makes_the_repair_the_metrics_point_at(
    run_step: StepRun, world: World, service: str, change: dict, repair: str
) -> None:
    _set(world, service, **change)
    finding, calls = run_step(f"{service} is degraded; repair it within policy", role="optimizer",
                              instruction=f"Repair {service}")
    assert _writes(calls) == [(repair, service, "ok")]
    assert world.get_service_metrics(service)["status"] == "healthy"
    assert service in finding["summary"]


def test_an_error_no_repair_explains_is_left_for_a_person(run_step: StepRun, world: World) -> None:
    _set(world, "search-api", releases=[])
    finding, calls = run_step("search-api is degraded; repair it within policy", role="optimizer",
                              instruction="Repair search-api")
    assert _writes(calls) == []
    assert world.get_service_metrics("search-api")["status"] == "erroring"
    assert "No change to search-api" in finding["summary"]


def test_a_failed_rollback_is_reported_not_retried(run_step: StepRun, world: World) -> None:
    def refuse(name: str, args: dict) -> str | None:
        from agentmesh.core.messages import tool_result

        return tool_result("refused", error="rollback needs a person") if name == "rollback_service" else None

    finding, calls = run_step("search-api is degraded; repair it within policy", role="optimizer",
                              instruction="Repair search-api", intercept=refuse)
    assert [c[0] for c in calls].count("rollback_service") == 1
    assert "rollback needs a person" in finding["summary"]
