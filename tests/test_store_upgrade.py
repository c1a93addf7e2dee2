"""A database made by an earlier agentmesh opens in this one: new columns are added, nothing recorded is lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from agentmesh.persistence import runs as store
from agentmesh.persistence import tables
from agentmesh.persistence.database import get_engine
from agentmesh.plugins.operations.world import _tables as world_tables


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_table_missing_a_newer_column_gets_it_and_keeps_its_rows(database: str, tmp_path: Path,
                                                                   request: pytest.FixtureRequest) -> None:
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        with sqlite3.connect(tmp_path / "old.db") as old:  # `runs` as an earlier release made it: no `timings`
            old.execute("CREATE TABLE runs (run_id VARCHAR(64) PRIMARY KEY, goal TEXT NOT NULL, graph VARCHAR(64),"
                        " status VARCHAR(32), created TIMESTAMP, updated TIMESTAMP)")
            old.execute("INSERT INTO runs VALUES ('r-old', 'an old goal', 'mesh', 'done', '2026-01-01', '2026-01-01')")
    else:
        import psycopg

        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(url.replace("+psycopg", "")) as old:
            old.execute("CREATE TABLE runs (run_id VARCHAR(64) PRIMARY KEY, goal TEXT NOT NULL, graph VARCHAR(64),"
                        " status VARCHAR(32), created TIMESTAMPTZ, updated TIMESTAMPTZ)")
            old.execute("INSERT INTO runs VALUES ('r-old', 'an old goal', 'mesh', 'done', now(), now())")
    assert "timings" in tables.runs.c and "releases" in world_tables.services.c

    engine = get_engine(url)

    columns = {c["name"] for c in inspect(engine).get_columns("runs")}
    assert {c.name for c in tables.runs.columns} <= columns
    assert store.get_run(engine, "r-old")["goal"] == "an old goal"
    store.update_run(engine, "r-old", timings={"wall_s": 1.5})  # the new column is writable
    with engine.connect() as conn:
        assert conn.execute(select(tables.runs.c.timings).where(tables.runs.c.run_id == "r-old")).scalar() == {"wall_s": 1.5}
