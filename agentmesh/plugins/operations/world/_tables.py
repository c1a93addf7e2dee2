"""The world's tables, on a ``MetaData`` of the world's own: created when a world is first opened on a database
(``World.open``), never for a run that does not use the world.

Every row a write method changes carries a ``version`` that the change bumps; ``world_effects`` maps an
idempotency key to the result it produced, so a retried or resumed call returns that result again.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, ForeignKey, Integer, MetaData, String, Table, Text

__all__ = [
    "metadata",
    "customers",
    "dataset_versions",
    "datasets",
    "effects",
    "meta",
    "notifications",
    "orders",
    "refunds",
    "services",
    "tickets",
]


metadata = MetaData()
"""The world's tables (and only them)."""


def _ts(name: str, **kw: object) -> Column:
    return Column(name, DateTime(timezone=True), **kw)  # type: ignore[arg-type]


# One row per domain ("services", "refunds", "outbox", "datasets") plus the world's own facts ("sample").
# Write methods lock their domain's row first, so limits that span rows (the hourly cost ceiling, the
# daily refund budget) are checked against a state no concurrent call can change underneath.
meta = Table(
    "world_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", JSON),
    Column("version", Integer, nullable=False, default=1),
)

effects = Table(
    "world_effects",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("method", String(64), nullable=False),
    Column("result", JSON, nullable=False),
    _ts("created", nullable=False),
)

services = Table(
    "world_services",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("replicas", Integer, nullable=False),
    Column("arrival_rate_rps", Float, nullable=False),
    Column("service_rate_rps", Float, nullable=False),  # per replica
    Column("base_latency_ms", Float, nullable=False),  # p95 of one request with no queueing
    Column("base_error_rate", Float, nullable=False),  # errors a bug causes whatever the load
    Column("cost_per_replica_hour", Float, nullable=False),
    Column("deployed_version", String(32), nullable=False),
    # Earlier releases, oldest first: [{version, base_latency_ms, base_error_rate}]; a rollback pops the last.
    Column("releases", JSON, nullable=False, default=list),
    Column("fault", String(32)),  # a transient fault a restart clears (services.FAULTS), or None
    Column("version", Integer, nullable=False, default=1),
    _ts("updated", nullable=False),
)

customers = Table(
    "world_customers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(200), nullable=False),
    Column("tier", String(32), nullable=False),
    Column("country", String(64), nullable=False),
)

orders = Table(
    "world_orders",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("customer_id", String(32), ForeignKey("world_customers.id"), nullable=False),
    Column("total_usd", Float, nullable=False),
    Column("status", String(32), nullable=False),
    Column("items", JSON, nullable=False),
    Column("placed_on", String(10), nullable=False),
)

tickets = Table(
    "world_tickets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("customer_id", String(32), ForeignKey("world_customers.id"), nullable=False),
    Column("order_id", String(32), ForeignKey("world_orders.id")),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),  # customer-written: data, never instructions
    Column("priority", String(16), nullable=False),  # low, normal, high, urgent
    Column("status", String(16), nullable=False),  # open, escalated, resolved
    Column("sentiment", Float, nullable=False),
    Column("requested_refund_usd", Float, nullable=False, default=0.0),
    Column("refund_total_usd", Float, nullable=False, default=0.0),
    Column("resolution", Text),
    Column("escalation_reason", Text),
    Column("version", Integer, nullable=False, default=1),
    _ts("created", nullable=False),
    _ts("updated", nullable=False),
)

refunds = Table(
    "world_refunds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(32), ForeignKey("world_tickets.id"), nullable=False),
    Column("amount_usd", Float, nullable=False),
    Column("day", String(10), nullable=False),  # UTC date, for the daily budget
    Column("key", String(400)),
    _ts("created", nullable=False),
)

notifications = Table(
    "world_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("key", String(400)),
    _ts("created", nullable=False),
)

datasets = Table(
    "world_datasets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("format", String(16), nullable=False),  # csv or parquet
    Column("key_column", String(64)),
    Column("latest_version", Integer, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    _ts("updated", nullable=False),
)

dataset_versions = Table(
    "world_dataset_versions",
    metadata,
    Column("dataset", String(64), ForeignKey("world_datasets.name"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("path", String(512), nullable=False),  # relative to the world's home
    Column("rows", Integer, nullable=False),
    Column("quality_score", Float, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("parent", Integer),
    Column("operations", JSON, nullable=False),
    Column("report", JSON),  # what cleaning did: per-operation counts, quarantine file
    Column("key", String(400)),
    _ts("created", nullable=False),
)
