"""The agentmesh database: one SQLAlchemy engine per URL, the tables of runs and steps, and their records.

SQLite (the default, under ``AGENTMESH_HOME``) runs in WAL mode with a busy timeout so concurrent goals and
a reader such as ``agentmesh runs show`` never see ``database is locked``. PostgreSQL takes the same code.
The world's tables (``agentmesh.world``) and the audit (``agentmesh.audit``) share this ``metadata``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    update,
)

from .exceptions import ConfigError, NotFoundError

__all__ = ["metadata", "runs", "steps", "model_calls", "get_engine", "utcnow"]

metadata = MetaData()


def utcnow() -> datetime:
    return datetime.now(UTC)


# DateTime(timezone=True) keeps PostgreSQL honest; SQLite stores the ISO text either way.
def _ts(name: str, **kw: Any) -> Column:
    return Column(name, DateTime(timezone=True), **kw)


runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("flow_run_id", String(64)),
    Column("goal", Text, nullable=False),
    Column("graph", String(128), nullable=False),
    Column("status", String(32), nullable=False),  # running, done, failed, waiting_approval, budget_exceeded, cancelled
    Column("model", String(128), nullable=False),
    Column("offline", Boolean, nullable=False),
    Column("deployment", String(128)),
    Column("prefect_api_url", String(512)),
    Column("error", Text),
    Column("plan", JSON),
    Column("decision", JSON),
    Column("usage", JSON),
    Column("timings", JSON),
    Column("prompt_versions", JSON),
    _ts("created", nullable=False),
    _ts("updated", nullable=False),
)

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("step_key", String(256), primary_key=True),  # LangGraph's checkpoint namespace of the node's task
    Column("node", String(128), nullable=False),
    Column("agent", String(64)),
    Column("prefect_task_run_id", String(64)),
    Column("status", String(32), nullable=False),  # running, done, failed, paused
    Column("seq", Integer, nullable=False),
    _ts("started", nullable=False),
    _ts("ended"),
)

# The model journal: what each model call of a step returned, so a retried or resumed step replays the
# recorded replies instead of asking the model again (and so repeats no tool call id).
model_calls = Table(
    "model_calls",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("step_key", String(256), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("agent", String(64)),
    Column("model", String(128)),
    Column("message", JSON, nullable=False),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    _ts("created", nullable=False),
)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """The process-wide engine for a database URL, with every table created."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create(url)
    return engine


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        path = make_url(url).database
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        # pysqlite's own transaction handling defers BEGIN; take the write lock up front so two writers
        # queue on the busy timeout instead of failing to upgrade a read lock.
        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        engine.dialect._agentmesh_sqlite = True  # type: ignore[attr-defined]
    else:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        try:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except Exception as exc:  # a malformed URL or a missing driver
            raise ConfigError(f"cannot use database URL: {exc}") from None
    # Every module that defines tables on `metadata` is imported first, so one create_all makes them all.
    from . import audit, events, memory  # noqa: F401
    from .evolution import _tables as _evolution_tables  # noqa: F401
    from .world import _tables  # noqa: F401

    try:
        metadata.create_all(engine)
        _add_new_columns(engine)
    except Exception as exc:
        from .settings import mask_url

        raise ConfigError(f"cannot open the agentmesh database {mask_url(url)}: {type(exc).__name__}") from None
    return engine


def _add_new_columns(engine: Engine) -> None:
    """Bring a database made by an earlier agentmesh up to date: a column added to a table since is added
    (NULL in the old rows), so upgrading keeps every recorded run, audit row and prompt version."""
    from sqlalchemy import inspect
    from sqlalchemy.schema import CreateColumn

    existing = inspect(engine)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in existing.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in have]
        if missing:
            with engine.begin() as conn:
                for column in missing:
                    ddl = CreateColumn(column).compile(dialect=engine.dialect)
                    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}".replace(" NOT NULL", ""))


# -- runs -----------------------------------------------------------------------------------------------


def create_run(engine: Engine, **values: Any) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(runs).values(created=now, updated=now, **values))


def update_run(engine: Engine, run_id: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(updated=utcnow(), **values))


def find_run(engine: Engine, run_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
    return dict(row) if row else None


def get_run(engine: Engine, run_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if row is None:
            # Accept a unique prefix, as git does for commits.
            rows = conn.execute(select(runs).where(runs.c.run_id.startswith(run_id))).mappings().all()
            if len(rows) == 1 and len(run_id) >= 4:
                row = rows[0]
    if row is None:
        raise NotFoundError(f"no run {run_id!r}; `agentmesh runs list` shows the runs")
    return dict(row)


def list_runs(engine: Engine, *, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
    query = select(runs).order_by(runs.c.created.desc()).limit(limit)
    if status:
        query = query.where(runs.c.status == status)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def list_steps(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(steps).where(steps.c.run_id == run_id).order_by(steps.c.seq)).mappings()
        return [dict(r) for r in rows]
