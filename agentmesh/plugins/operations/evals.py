"""Trial worlds: every trial gets its own copy of the starting world, in its own agentmesh home.

A fixture is loaded once per eval into a template home (``World.init`` takes ~0.7 s: dataset files and
profiles); each trial copies that folder (milliseconds), applies the scenario's setup actions, and runs its
goal with ``Settings(home=<the copy>)``. The expected state is made the same way, with the reference
actions applied instead of the goal.

The state view the scorers read (``state_view``) is plain data::

    services.<name>.{replicas, cpu_pct, p95_ms, error_rate, hourly_cost, status,
                     deployed_version, fault, restarts}
    tickets.<id>.{status, priority, refund_total_usd, resolution, escalation_reason}
    datasets.<name>.{versions, rows, quality_score}
    notifications.{count, severities, messages}
    total_hourly_cost_usd, refunds_total_usd

It holds every field a built-in write tool changes: ``scale_service`` the replicas, ``restart_service`` the
restart count and the fault (a restart clears it), ``rollback_service`` the deployed version (and the fault),
``clean_dataset`` the versions, rows and quality, ``resolve_ticket`` / ``escalate_ticket`` the status, refunds,
resolution and escalation reason, ``notify_operations`` the outbox. ``restarts`` counts the restarts recorded
in the world's effect log (every tool call is keyed, so each one is), including those of the setup.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import update

from agentmesh.core.settings import Settings
from agentmesh.evaluation.scenario import Scenario, SetupAction, ToolAction
from agentmesh.plugins.operations.world import World
from agentmesh.plugins.operations.world import _tables as t

__all__ = ["WorldFactory", "apply_action", "apply_setup", "state_view"]

_SERVICE_COLUMNS = {"replicas", "arrival_rate_rps", "service_rate_rps", "base_latency_ms", "base_error_rate",
                    "cost_per_replica_hour", "deployed_version", "description", "releases", "fault"}
_TICKET_COLUMNS = {"status", "priority", "body", "subject", "requested_refund_usd"}


def _fixture_name(scenario: Scenario) -> str:
    fixture = scenario.world.fixture
    if fixture != "default" and scenario.source and not Path(fixture).is_absolute():
        relative = Path(scenario.source).parent / fixture
        if relative.exists():
            return str(relative.resolve())
    return fixture


class WorldFactory:
    """Template homes per fixture under ``root``, copied once per trial (the operations plug-in's ``eval_worlds``:
    ``agentmesh.evaluation.runner.TrialWorlds``)."""

    def __init__(self, root: Path, *, model: str = "offline", base: Settings | None = None) -> None:
        self.root = Path(root)
        self.model = model
        self.base = base
        self._templates: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._count = 0

    def settings(self, home: Path) -> Settings:
        if self.base is None:
            return Settings(home=home, model=self.model)
        # A trial has a home of its own, but records its runs in the eval's Prefect (one per process).
        copy = self.base.model_copy(update={"home": home, "database_url": "", "checkpoint_url": "",
                                            "prefect_home": self.base.resolved_prefect_home})
        copy.__dict__.pop("resolved_home", None)  # a cached_property the copy would otherwise share
        return copy

    # Sent to an eval's worker processes (agentmesh.evaluation.runner, `processes`): the lock stays here.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def template(self, fixture: str) -> Path:
        with self._lock:
            found = self._templates.get(fixture)
            if found is None:
                # Named by the fixture and made under another name, then renamed: processes sharing the root
                # make each template once, and never see one half made.
                found = self.root / "fixtures" / hashlib.sha256(fixture.encode()).hexdigest()[:16]
                if not found.exists():
                    staging = found.with_name(f"{found.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
                    world = World.from_settings(self.settings(staging))
                    world.init(fixture)
                    world.engine.dispose()  # the copy must see a closed file
                    try:
                        staging.rename(found)
                    except OSError:  # another process made it first
                        shutil.rmtree(staging, ignore_errors=True)
                self._templates[fixture] = found
            return found

    def fresh(self, scenario: Scenario, label: str) -> tuple[Settings, World]:
        """A new home holding the scenario's starting world (fixture + setup)."""
        source = self.template(_fixture_name(scenario))
        with self._lock:
            self._count += 1
            home = self.root / "trials" / f"{label}-{self._count}"
        shutil.copytree(source, home)
        settings = self.settings(home)
        world = World.from_settings(settings)
        apply_setup(world, scenario.world.setup)
        return settings, world

    def final_state(self, world: World) -> dict[str, Any]:
        """The state view of a trial's world after its goals."""
        return state_view(world)

    def expected_state(self, scenario: Scenario) -> dict[str, Any]:
        """The state view after the reference actions on a fresh starting world."""
        _, world = self.fresh(scenario, f"{scenario.id}-expected")
        for i, action in enumerate(scenario.evaluation.reference_actions):
            apply_action(world, action, key=f"reference-{i}")
        return state_view(world)


def apply_action(world: World, action: ToolAction, *, key: str) -> Any:
    method = getattr(world, action.tool)
    return method(**action.args, key=key)


def apply_setup(world: World, actions: list[SetupAction]) -> None:
    """Apply setup actions in order, directly on the world's tables (policy limits are not in the way)."""
    for i, action in enumerate(actions):
        kind = action.kind
        if kind == "set_service":
            values = dict(action.set_service or {})
            name = values.pop("name", None)
            bad = set(values) - _SERVICE_COLUMNS
            if not name or bad:
                raise ValueError(f"set_service needs `name` and columns from {sorted(_SERVICE_COLUMNS)}; got {bad or 'no name'}")
            with world.engine.begin() as conn:
                if conn.execute(update(t.services).where(t.services.c.name == name).values(**values)).rowcount != 1:
                    raise ValueError(f"set_service: no service {name!r}")
        elif kind == "set_ticket":
            values = dict(action.set_ticket or {})
            ticket_id = values.pop("id", None)
            bad = set(values) - _TICKET_COLUMNS
            if not ticket_id or bad:
                raise ValueError(f"set_ticket needs `id` and columns from {sorted(_TICKET_COLUMNS)}; got {bad or 'no id'}")
            if "body" in values or "subject" in values:
                from agentmesh.plugins.operations.world.sentiment import score

                with world.engine.connect() as conn:
                    row = world._ticket(conn, ticket_id)
                values["sentiment"] = score(f"{values.get('subject', row.subject)}. {values.get('body', row.body)}")
            with world.engine.begin() as conn:
                conn.execute(update(t.tickets).where(t.tickets.c.id == ticket_id).values(**values))
        elif kind == "add_ticket":
            from sqlalchemy import insert

            from agentmesh.plugins.operations.world import _ticket_row

            with world.engine.begin() as conn:
                conn.execute(insert(t.tickets).values(**_ticket_row(dict(action.add_ticket or {}))))
        elif kind == "only_open_tickets":
            keep = set(action.only_open_tickets or [])
            with world.engine.begin() as conn:
                conn.execute(update(t.tickets).where(t.tickets.c.status == "open", t.tickets.c.id.not_in(keep))
                             .values(status="resolved", resolution="closed before the scenario"))
        elif kind == "call":
            assert action.call is not None
            apply_action(world, action.call, key=f"setup-{i}")


def state_view(world: World) -> dict[str, Any]:
    """The world as the scorers compare it (see the module docstring)."""
    from sqlalchemy import select

    services = world.list_services()
    with world.engine.connect() as conn:
        rows = conn.execute(select(t.tickets.c.id, t.tickets.c.status, t.tickets.c.priority,
                                   t.tickets.c.refund_total_usd, t.tickets.c.resolution,
                                   t.tickets.c.escalation_reason)).all()
        notes = conn.execute(select(t.notifications.c.severity, t.notifications.c.message)
                             .order_by(t.notifications.c.id)).all()
        releases = {r.name: r for r in conn.execute(select(t.services.c.name, t.services.c.deployed_version,
                                                           t.services.c.fault))}
        restarts: dict[str, int] = {}
        for (result,) in conn.execute(select(t.effects.c.result).where(t.effects.c.method == "restart_service")):
            name = str((result or {}).get("service"))
            restarts[name] = restarts.get(name, 0) + 1
    datasets = world.list_datasets()["datasets"]
    return {
        "services": {s["name"]: {**{k: s[k] for k in ("replicas", "cpu_pct", "p95_ms", "error_rate", "hourly_cost",
                                                      "status")},
                                 "deployed_version": releases[s["name"]].deployed_version,
                                 "fault": releases[s["name"]].fault, "restarts": restarts.get(s["name"], 0)}
                     for s in services["services"]},
        "tickets": {r.id: {"status": r.status, "priority": r.priority, "refund_total_usd": round(r.refund_total_usd, 2),
                           "resolution": r.resolution, "escalation_reason": r.escalation_reason}
                    for r in rows},
        "datasets": {d["name"]: {"versions": d.get("versions"), "rows": d.get("rows"),
                                 "quality_score": d.get("quality_score")} for d in datasets},
        "notifications": {"count": len(notes), "severities": sorted(n.severity for n in notes),
                          "messages": [n.message for n in notes]},
        "total_hourly_cost_usd": services["total_hourly_cost_usd"],
        "refunds_total_usd": round(sum(r.refund_total_usd for r in rows), 2),
    }
