"""The operations world the built-in tools act on: services, datasets, tickets and an operator outbox.

State lives in the agentmesh database (SQLite or PostgreSQL, same code), in tables of the world's own; dataset
files live under ``world/datasets`` in the shared storage (``storage_url``: the home by default). Every write
method is atomic and idempotent by ``key`` and enforces the world's limits (the policy's ``[world]`` table) itself, so they hold whoever calls it.

    world = World.open(get_settings())           # its tables created, the default sample loaded if empty
    world.scale_service("checkout-api", 6, key="run-1:call-1")
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, func, insert, select

from agentmesh.core.exceptions import UserError
from agentmesh.core.storage import Storage
from agentmesh.persistence.database import create_tables, get_engine, utcnow
from agentmesh.plugins.operations.limits import WorldLimits
from agentmesh.plugins.operations.world import _tables as t
from agentmesh.plugins.operations.world._atomic import DOMAINS
from agentmesh.plugins.operations.world._clean import OPERATIONS, CleanOperation
from agentmesh.plugins.operations.world._sample import load_sample, sample_dir
from agentmesh.plugins.operations.world.datasets import DatasetsMixin
from agentmesh.plugins.operations.world.sentiment import score
from agentmesh.plugins.operations.world.services import ServicesMixin
from agentmesh.plugins.operations.world.tickets import TicketsMixin

if TYPE_CHECKING:
    from agentmesh.core.settings import Settings

__all__ = ["OPERATIONS", "CleanOperation", "World"]


class World(ServicesMixin, DatasetsMixin, TicketsMixin):
    """One operations world: a database plus a storage of dataset files, acting within its limits."""

    def __init__(self, engine: Engine, *, home: Path, limits: WorldLimits, storage: Storage | None = None) -> None:
        create_tables(engine, t.metadata)
        self.engine = engine
        self.home = Path(home)
        self.limits = limits
        self.storage = storage or Storage.from_url("", home=self.home)

    @classmethod
    def from_settings(cls, settings: Settings, limits: WorldLimits | None = None) -> World:
        """The world of a home, with the limits of its policy file; its tables are created, nothing is loaded."""
        if limits is None:
            from agentmesh.runtime.components import components

            limits = components(settings).policy.section("world", WorldLimits)
        return cls(get_engine(settings.resolved_database_url), home=settings.resolved_home, limits=limits,
                   storage=Storage.from_url(settings.storage_url, home=settings.resolved_home))

    @classmethod
    def open(cls, settings: Settings, limits: WorldLimits | None = None) -> World:
        """The world a run's tools act on: ``from_settings``, with the default sample loaded into an empty one."""
        world = cls.from_settings(settings, limits)
        world.ensure_initialised()
        return world

    # -- lifecycle --------------------------------------------------------------------------------------------

    def sample_name(self) -> str | None:
        """The sample the world was initialised from, or None when it is empty."""
        with self.engine.connect() as conn:
            value = conn.execute(select(t.meta.c.value).where(t.meta.c.name == "sample")).scalar_one_or_none()
        return None if value is None else value["name"]

    def init(self, sample: str = "default", *, force: bool = False) -> dict[str, Any]:
        """Load a sample world; an existing world is kept unless ``force``."""
        folder = sample_dir(sample)
        existing = self.sample_name()
        if existing is not None:
            if not force:
                raise UserError(
                    f"a world (sample {existing!r}) already exists; `agentmesh world reset` restores it, "
                    "`agentmesh world init --force` replaces it"
                )
            self._clear()
        data = load_sample(folder)
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(insert(t.meta), [{"name": d, "value": None, "version": 1} for d in DOMAINS]
                         + [{"name": "sample", "value": {"name": sample, "created": now.isoformat()}, "version": 1}])
            if data["services"]:
                conn.execute(insert(t.services), [{"releases": [], "fault": None, **s, "version": 1, "updated": now}
                                                  for s in data["services"]])
            if data["customers"]:
                conn.execute(insert(t.customers), data["customers"])
            if data["orders"]:
                conn.execute(insert(t.orders), data["orders"])
            if data["tickets"]:
                conn.execute(insert(t.tickets), [_ticket_row(x) for x in data["tickets"]])
            for d in data["datasets"]:
                self._add_dataset(conn, folder / "datasets" / d["file"], name=d["name"],
                                  description=d.get("description", ""), key_column=d.get("key_column"))
        # A sample may carry lessons for decision memory (operator feedback from before the sample's "now").
        from agentmesh.memory import replace_sample_lessons

        replace_sample_lessons(self.engine, list(data.get("lessons") or []))
        return {"sample": sample, "home": str(self.home), **self.counts()}

    def ensure_initialised(self) -> None:
        """Load the default sample if the world is empty (a fresh home)."""
        if self.sample_name() is None:
            try:
                self.init()
            except UserError:  # initialised concurrently by another process
                if self.sample_name() is None:
                    raise

    def reset(self) -> None:
        """Put the world back to its sample's initial state: every change, refund and notification undone."""
        self.init(self.sample_name() or "default", force=True)

    def _clear(self) -> None:
        with self.engine.begin() as conn:
            for table in (t.effects, t.refunds, t.notifications, t.tickets, t.orders, t.customers,
                          t.dataset_versions, t.datasets, t.services, t.meta):
                conn.execute(delete(table))
        self.storage.remove_tree(self.DATASETS)

    # -- reading it all ---------------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in (("services", t.services), ("datasets", t.datasets), ("customers", t.customers),
                                    ("orders", t.orders), ("tickets", t.tickets), ("notifications", t.notifications))
            }

    def snapshot(self) -> dict[str, Any]:
        """The whole world as plain data (``agentmesh world show --json``)."""
        with self.engine.connect() as conn:
            svc = self._services(conn)
            ticket_rows = conn.execute(select(t.tickets).order_by(t.tickets.c.id)).all()
        services = [self._service_view(r) for r in svc]
        tickets = [
            {"id": r.id, "status": r.status, "priority": r.priority, "sentiment": round(r.sentiment, 2),
             "refund_total_usd": r.refund_total_usd, "requested_refund_usd": r.requested_refund_usd,
             "customer_id": r.customer_id, "order_id": r.order_id, "subject": r.subject, "version": r.version}
            for r in ticket_rows
        ]
        counts = self.counts()
        return {
            "sample": self.sample_name(),
            "home": str(self.home),
            "services": services,
            "total_hourly_cost_usd": round(sum(s["hourly_cost"] for s in services), 2),
            "hourly_cost_ceiling_usd": self.limits.hourly_cost_ceiling_usd,
            "tickets": tickets,
            "refunds_total_usd": round(sum(x["refund_total_usd"] for x in tickets), 2),
            "datasets": self.list_datasets()["datasets"],
            "notifications": self.list_notifications(),
            "customers": counts["customers"],
            "orders": counts["orders"],
        }


def _ticket_row(ticket: dict[str, Any]) -> dict[str, Any]:
    created = datetime.fromisoformat(ticket["created"]) if isinstance(ticket.get("created"), str) else utcnow()
    return {
        "id": ticket["id"],
        "customer_id": ticket["customer_id"],
        "order_id": ticket.get("order_id"),
        "subject": ticket["subject"],
        "body": ticket["body"],
        "priority": ticket.get("priority", "normal"),
        "status": ticket.get("status", "open"),
        "sentiment": score(f"{ticket['subject']}. {ticket['body']}"),
        "requested_refund_usd": float(ticket.get("requested_refund_usd", 0.0)),
        "refund_total_usd": 0.0,
        "version": 1,
        "created": created,
        "updated": created,
    }
