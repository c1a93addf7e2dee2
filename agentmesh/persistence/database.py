"""The agentmesh database: one SQLAlchemy engine per URL, with every table of ``persistence.tables`` created.

SQLite (the default, under ``AGENTMESH_HOME``) runs in WAL mode with a busy timeout so concurrent goals and
a reader such as ``agentmesh runs show`` never see ``database is locked``. PostgreSQL takes the same code.

    engine = get_engine("sqlite:///.agentmesh/agentmesh.db")
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateColumn

from agentmesh.core.exceptions import ConfigError
from agentmesh.core.settings import mask_url
from agentmesh.persistence.tables import metadata

__all__ = ["create_tables", "get_engine", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """The process-wide engine for a database URL, with agentmesh's tables created."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create(url)
    return engine


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
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

    else:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        try:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except ModuleNotFoundError as exc:
            extra = " pip install 'agentmesh[postgres]'" if url.startswith("postgresql") else ""
            raise ConfigError(f"the database driver {exc.name!r} is not installed:{extra}") from None
        except Exception as exc:  # a malformed URL or a missing driver
            raise ConfigError(f"cannot use database URL: {exc}") from None
    create_tables(engine, metadata)
    return engine


def create_tables(engine: Engine, tables: MetaData) -> None:
    """Create the tables of ``tables`` that do not exist, and the columns added to them since a database was made."""
    try:
        tables.create_all(engine)
        _add_new_columns(engine, tables)
    except Exception as exc:
        raise ConfigError(f"cannot open the agentmesh database {mask_url(str(engine.url))}: "
                          f"{type(exc).__name__}") from None


def _add_new_columns(engine: Engine, tables: MetaData) -> None:
    """Bring a database made by an earlier agentmesh up to date: a column added to a table since is added
    (NULL in the old rows), so upgrading keeps every recorded run, audit row and prompt version."""
    existing = inspect(engine)
    for table in tables.sorted_tables:
        have = {c["name"] for c in existing.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in have]
        if missing:
            with engine.begin() as conn:
                for column in missing:
                    ddl = CreateColumn(column).compile(dialect=engine.dialect)
                    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}".replace(" NOT NULL", ""))
