"""Services: replicas, load and cost, read through the queueing model; scaled, restarted and rolled back.

Three failure modes, each fixed by one repair and not by the others:

- **overload**: arrivals near or above capacity; more replicas (``scale_service``) fix it.
- **transient fault** (``FAULTS``, e.g. a memory leak): extra latency and errors at any load, memory near
  full; ``restart_service`` clears it.
- **bad release**: the deployed version's own error rate (or latency) is worse than the release before it;
  ``rollback_service`` returns to that release. Restarting or scaling leaves a bug's errors as they are.

A rollback redeploys every replica, so it clears a transient fault too; it still changes the version, which
is why a restart is the right repair for a leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, select, update

from agentmesh.core.exceptions import NotFoundError, PolicyViolation
from agentmesh.persistence.database import utcnow
from agentmesh.plugins.operations.world import queueing
from agentmesh.plugins.operations.world._atomic import atomic
from agentmesh.plugins.operations.world._tables import services

if TYPE_CHECKING:
    from agentmesh.plugins.operations.limits import WorldLimits

__all__ = ["FAULTS", "Fault", "ServicesMixin"]


@dataclass(kw_only=True, frozen=True)
class Fault:
    """A transient fault: it adds latency and errors whatever the load, until a restart."""

    extra_latency_ms: float
    """Added to the p95 of every request."""
    extra_error_rate: float
    """Added to the error rate (e.g. requests lost when a process runs out of memory)."""
    memory_pct: float
    """Memory use it shows (the operator's clue)."""


FAULTS = {"memory_leak": Fault(extra_latency_ms=400.0, extra_error_rate=0.05, memory_pct=97.0)}
"""Transient faults by the name the ``fault`` column holds."""


def _status(m: queueing.Load) -> str:
    if m.utilisation >= 1:
        return "saturated"
    if m.utilisation > queueing.OVERLOAD_KNEE or m.p95_ms > 500:
        return "overloaded"
    if m.error_rate > 0.02:
        return "erroring"
    if m.utilisation < 0.25:
        return "over-provisioned"
    return "healthy"


def _load(row: Any, replicas: int | None = None) -> queueing.Load:
    fault = FAULTS.get(row.fault or "")
    return queueing.load(
        arrival_rps=row.arrival_rate_rps,
        service_rps=row.service_rate_rps,
        replicas=row.replicas if replicas is None else replicas,
        base_latency_ms=row.base_latency_ms + (fault.extra_latency_ms if fault else 0.0),
        base_error_rate=row.base_error_rate + (fault.extra_error_rate if fault else 0.0),
    )


def _at(row: Any, replicas: int) -> dict[str, Any]:
    m = _load(row, replicas)
    fault = FAULTS.get(row.fault or "")
    return {
        "replicas": replicas,
        "cpu_pct": m.cpu_pct,
        "p95_ms": m.p95_ms,
        "error_rate": m.error_rate,
        "utilisation": m.utilisation,
        "memory_pct": fault.memory_pct if fault else round(30 + 30 * min(m.utilisation, 1.0), 1),
        "hourly_cost": round(replicas * row.cost_per_replica_hour, 2),
        "status": _status(m),
    }


def _with(row: Any, **changes: Any) -> Any:
    """The row as it would be after ``changes`` (for metrics after a restart or a rollback)."""
    return SimpleNamespace(**{**row._mapping, **changes})


def _release(row: Any, release: dict[str, Any]) -> Any:
    """The row running an earlier ``release`` (a fresh deploy: no transient fault)."""
    return _with(row, deployed_version=release["version"], base_latency_ms=release["base_latency_ms"],
                 base_error_rate=release["base_error_rate"], fault=None)


class ServicesMixin:
    engine: Engine
    limits: WorldLimits

    def _services(self, conn: Connection) -> list[Any]:
        return list(conn.execute(select(services).order_by(services.c.name)))

    def _service(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = select(services).where(services.c.name == name)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            known = ", ".join(r.name for r in conn.execute(select(services.c.name).order_by(services.c.name)))
            raise NotFoundError(f"no service {name!r}; known services: {known or 'none (run `agentmesh world init`)'}")
        return row

    def _service_view(self, row: Any) -> dict[str, Any]:
        limits = self.limits.limits_for(row.name)
        return {
            "name": row.name,
            "description": row.description,
            **_at(row, row.replicas),
            "min_replicas": limits.min_replicas,
            "max_replicas": limits.max_replicas,
            "max_change_per_call": limits.max_change_per_call,
            "requests_per_s": row.arrival_rate_rps,
            "capacity_per_replica_rps": row.service_rate_rps,
            "cost_per_replica_hour": row.cost_per_replica_hour,
            "deployed_version": row.deployed_version,
            **self._previous_release(row),
            "version": row.version,
        }

    def _previous_release(self, row: Any) -> dict[str, Any]:
        """The deployed and the previous release's own p95 and error rate (no load, no fault): the clue that a
        release, not load or a fault, brought the errors. ``previous_*`` are None when nothing is earlier."""
        previous = row.releases[-1] if row.releases else {}
        return {
            "release_error_rate": row.base_error_rate,
            "release_base_p95_ms": row.base_latency_ms,
            "previous_version": previous.get("version"),
            "previous_release_error_rate": previous.get("base_error_rate"),
            "previous_release_base_p95_ms": previous.get("base_latency_ms"),
        }

    def list_services(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = self._services(conn)
        total = sum(r.replicas * r.cost_per_replica_hour for r in rows)
        brief = ("name", "description", "replicas", "cpu_pct", "p95_ms", "error_rate", "hourly_cost", "status")
        return {
            "services": [{k: self._service_view(r)[k] for k in brief} for r in rows],
            "total_hourly_cost_usd": round(total, 2),
            "hourly_cost_ceiling_usd": self.limits.hourly_cost_ceiling_usd,
        }

    def get_service_metrics(self, service: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._service(conn, service)
        view = self._service_view(row)
        view.pop("description")
        return {"service": view.pop("name"), **view}

    def _scaling_problems(self, conn: Connection, row: Any, replicas: int) -> list[str]:
        """Every policy limit the change would break, each as one sentence with the allowed range."""
        if replicas < 0:
            raise ValueError(f"replicas must be 0 or more, got {replicas}")
        limits = self.limits.limits_for(row.name)
        problems = []
        if not limits.min_replicas <= replicas <= limits.max_replicas:
            problems.append(
                f"{row.name} must stay between {limits.min_replicas} and {limits.max_replicas} replicas "
                f"(asked for {replicas})"
            )
        if abs(replicas - row.replicas) > limits.max_change_per_call:
            low = max(limits.min_replicas, row.replicas - limits.max_change_per_call)
            high = min(limits.max_replicas, row.replicas + limits.max_change_per_call)
            problems.append(
                f"{row.name} may change by at most {limits.max_change_per_call} replicas per call "
                f"(from {row.replicas}, so {low}..{high} now)"
            )
        others = sum(r.replicas * r.cost_per_replica_hour for r in self._services(conn) if r.name != row.name)
        total = others + replicas * row.cost_per_replica_hour
        ceiling = self.limits.hourly_cost_ceiling_usd
        if total > ceiling + 1e-9:
            fit = int((ceiling - others) // row.cost_per_replica_hour)
            problems.append(
                f"the hourly cost of all services would be ${total:.2f}, above the ceiling of ${ceiling:.2f} "
                f"({row.name} fits at most {max(fit, 0)} replicas)"
            )
        return problems

    def simulate_scaling(self, service: str, replicas: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._service(conn, service)
            problems = self._scaling_problems(conn, row, replicas)
            total = sum(r.replicas * r.cost_per_replica_hour for r in self._services(conn))
        after = _at(row, replicas)
        return {
            "service": row.name,
            "current": _at(row, row.replicas),
            "simulated": after,
            "total_hourly_cost_usd_after": round(total + (replicas - row.replicas) * row.cost_per_replica_hour, 2),
            "allowed_by_policy": not problems,
            "policy_problems": problems,
            "changed_anything": False,
        }

    def scale_service(self, service: str, replicas: int, *, key: str | None = None) -> dict[str, Any]:
        def apply(conn: Connection) -> dict[str, Any]:
            row = self._service(conn, service, lock=True)
            problems = self._scaling_problems(conn, row, replicas)
            if problems:
                raise PolicyViolation(f"scale_service refused: {'; '.join(problems)}.")
            conn.execute(
                update(services)
                .where(services.c.name == row.name)
                .values(replicas=replicas, version=services.c.version + 1, updated=utcnow())
            )
            total = sum(r.replicas * r.cost_per_replica_hour for r in self._services(conn))
            return {
                "service": row.name,
                "previous_replicas": row.replicas,
                "replicas": replicas,
                "before": _at(row, row.replicas),
                "after": _at(row, replicas),
                "total_hourly_cost_usd": round(total, 2),
                "version": row.version + 1,
            }

        return atomic(self.engine, domain="services", method="scale_service", key=key, apply=apply)

    def restart_service(self, service: str, *, key: str | None = None) -> dict[str, Any]:
        """Restart every replica: a transient fault (a memory leak) is cleared; load and release are unchanged."""

        def apply(conn: Connection) -> dict[str, Any]:
            row = self._service(conn, service, lock=True)
            conn.execute(
                update(services)
                .where(services.c.name == row.name)
                .values(fault=None, version=services.c.version + 1, updated=utcnow())
            )
            after = _at(_with(row, fault=None), row.replicas)
            return {
                "service": row.name,
                "restarted_replicas": row.replicas,
                "cleared_fault": row.fault,
                "note": f"cleared a transient fault ({row.fault})" if row.fault else
                "no transient fault was present: the restart changed no metric",
                "before": _at(row, row.replicas),
                "after": after,
                "version": row.version + 1,
            }

        return atomic(self.engine, domain="services", method="restart_service", key=key, apply=apply)

    def rollback_service(self, service: str, *, key: str | None = None) -> dict[str, Any]:
        """Redeploy the release before the current one (one step back per call); replicas are unchanged."""

        def apply(conn: Connection) -> dict[str, Any]:
            row = self._service(conn, service, lock=True)
            releases = list(row.releases or [])
            if not releases:
                raise ValueError(f"{row.name} has no earlier release to roll back to (deployed: {row.deployed_version})")
            previous = releases.pop()
            conn.execute(
                update(services)
                .where(services.c.name == row.name)
                .values(deployed_version=previous["version"], base_latency_ms=previous["base_latency_ms"],
                        base_error_rate=previous["base_error_rate"], releases=releases, fault=None,
                        version=services.c.version + 1, updated=utcnow())
            )
            return {
                "service": row.name,
                "previous_version": row.deployed_version,
                "deployed_version": previous["version"],
                "before": _at(row, row.replicas),
                "after": _at(_release(row, previous), row.replicas),
                "earlier_releases_left": len(releases),
                "version": row.version + 1,
            }

        return atomic(self.engine, domain="services", method="rollback_service", key=key, apply=apply)
