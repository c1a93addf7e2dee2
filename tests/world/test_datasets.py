from __future__ import annotations

import hashlib

import duckdb
import pytest
from pydantic import ValidationError

from agentmesh.core.exceptions import NotFoundError, PolicyViolation
from agentmesh.plugins.operations.world import World
from agentmesh.plugins.operations.world.sample.generate import PLANTED


def _col(profile: dict, name: str) -> dict:
    return next(c for c in profile["columns"] if c["name"] == name)


def _digest(world: World, name: str, version: int) -> str:
    return hashlib.sha256(world.storage.read_bytes(world.dataset_file(name, version))).hexdigest()


def test_list_datasets(call) -> None:
    result = call("list_datasets")
    by_name = {d["name"]: d for d in result["datasets"]}
    assert set(by_name) == set(PLANTED)
    assert {d["format"] for d in by_name.values()} == {"csv", "parquet"}
    assert by_name["finance_ledger"]["protected"] and not by_name["customers"]["protected"]
    assert all(d["rows"] == PLANTED[n]["rows"] for n, d in by_name.items())


def test_profile_finds_planted_problems(call) -> None:
    customers = call("profile_dataset", dataset="customers")
    planted = PLANTED["customers"]
    assert customers["rows"] == planted["rows"]
    assert customers["duplicate_rows"] == planted["duplicate_rows"]
    assert _col(customers, "email")["null_count"] == planted["email_nulls"]
    age = _col(customers, "age")
    assert age["intended_type"] == "integer" and age["type_violations"] == planted["age_type_violations"]
    assert "N/A" in age["violation_examples"] and age["outliers"] == planted["age_outliers"]
    country = _col(customers, "country")
    assert country["variant_rows"] == planted["country_variant_rows"]
    us = next(g for g in country["inconsistent_categories"] if g["canonical"] == "US")
    assert us["variants"] == {"us ": 30, "U.S.": 12, "Us": 8}
    assert 0 < customers["quality_score"] < 100

    orders = call("profile_dataset", dataset="orders")
    planted = PLANTED["orders"]
    assert (orders["duplicate_rows"], orders["duplicate_keys"]) == (planted["duplicate_rows"], planted["duplicate_keys"])
    amount = _col(orders, "amount")
    assert amount["type_violations"] == planted["amount_type_violations"]
    assert amount["null_count"] == planted["amount_nulls"] and amount["outliers"] == planted["amount_outliers"]
    assert _col(orders, "status")["variant_rows"] == planted["status_variant_rows"]

    sensors = call("profile_dataset", dataset="sensor_readings")
    planted = PLANTED["sensor_readings"]
    temperature = _col(sensors, "temperature_c")
    assert temperature["null_count"] == planted["temperature_nulls"]
    assert temperature["outliers"] == planted["temperature_outliers"]
    assert _col(sensors, "humidity_pct")["type_violations"] == planted["humidity_type_violations"]
    assert sensors["duplicate_rows"] == planted["duplicate_rows"]


def test_clean_writes_a_new_version_and_keeps_the_original(call, world: World) -> None:
    original = _digest(world, "customers", 1)
    suggested = call("profile_dataset", dataset="customers")["suggested_operations"]
    result = call("clean_dataset", dataset="customers", operations=suggested)
    assert (result["version"], result["parent_version"]) == (2, 1)
    assert result["quality_after"] > result["quality_before"]
    assert result["rows_after"] == 1020 - 12 - 20  # twelve 'N/A' ages quarantined, twenty duplicates removed
    assert result["quarantined"][0]["rows"] == 12
    assert _digest(world, "customers", 1) == original
    assert world.dataset_file("customers") == world.dataset_file("customers", 2) != world.dataset_file("customers", 1)
    quarantine = world.storage.url(result["quarantined"][0]["file"])
    assert duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{quarantine}')").fetchone()[0] == 12

    after = call("profile_dataset", dataset="customers")
    assert after["version"] == 2 and after["duplicate_rows"] == 0
    assert "variant_rows" not in _col(after, "country")
    lineage = world.dataset_lineage("customers")
    assert [v["parent"] for v in lineage] == [None, 1]
    assert lineage[1]["operations"][0]["op"] == "map_categories"
    assert lineage[1]["key"] == "run-1:call-2"


def test_clean_parquet_with_every_operation(call, world: World) -> None:
    ops = [
        {"op": "normalize_text", "column": "status", "case": "lower"},
        {"op": "trim", "column": "currency"},
        {"op": "drop_nulls", "column": "amount"},
        {"op": "cast", "column": "amount", "type": "float"},
        {"op": "dedupe", "columns": ["order_id"]},
        {"op": "drop_outliers", "column": "amount", "method": "iqr"},
        {"op": "fill_nulls", "column": "customer_id", "value": "unknown"},
        {"op": "map_categories", "column": "currency", "mapping": {"usd": "USD"}},
        {"op": "clip_outliers", "column": "amount", "method": "zscore", "threshold": 4},
    ]
    result = call("clean_dataset", dataset="orders", operations=ops)
    steps = {s["op"]: s for s in result["operations"]}
    assert steps["normalize_text"]["values_changed"] == PLANTED["orders"]["status_variant_rows"]
    assert steps["drop_nulls"]["rows_removed"] == PLANTED["orders"]["amount_nulls"]
    assert steps["cast"]["rows_quarantined"] == PLANTED["orders"]["amount_type_violations"]
    assert steps["drop_outliers"]["rows_removed"] == PLANTED["orders"]["amount_outliers"]
    assert world.dataset_file("orders").endswith(".parquet")
    profile = call("profile_dataset", dataset="orders")
    assert profile["duplicate_keys"] == 0 and _col(profile, "amount")["type"] == "DOUBLE"


def test_protected_dataset_is_refused(call, world: World) -> None:
    with pytest.raises(PolicyViolation, match="'finance_ledger' is protected"):
        call("clean_dataset", dataset="finance_ledger", operations=[{"op": "dedupe"}])
    assert call("profile_dataset", dataset="finance_ledger")["version"] == 1
    assert not [n for n in world.storage.listdir("world/datasets/finance_ledger") if n.startswith("v2")]


def test_clean_is_idempotent_by_key(call, world: World) -> None:
    ops = [{"op": "dedupe"}]
    first = call("clean_dataset", dataset="sensor_readings", operations=ops, call_id="k")
    again = call("clean_dataset", dataset="sensor_readings", operations=ops, call_id="k")
    assert again["replayed"] and again["version"] == first["version"] == 2
    assert len(world.dataset_lineage("sensor_readings")) == 2


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "customers/../../x", "CUSTOMERS", ""])
def test_path_traversal_is_not_found(world: World, name: str) -> None:
    with pytest.raises(NotFoundError, match="known datasets: customers"):
        world.profile_dataset(name)
    with pytest.raises(NotFoundError):
        world.clean_dataset(name, [{"op": "dedupe"}])


def test_bad_operations(call, world: World) -> None:
    with pytest.raises(ValidationError):
        call("clean_dataset", dataset="customers", operations=[{"op": "explode", "column": "age"}])
    with pytest.raises(ValidationError):
        call("clean_dataset", dataset="customers", operations=[])
    with pytest.raises(ValueError, match="no column 'nope'; columns: customer_id"):
        call("clean_dataset", dataset="customers", operations=[{"op": "trim", "column": "nope"}])
    with pytest.raises(ValueError, match="cast it first"):
        call("clean_dataset", dataset="customers", operations=[{"op": "clip_outliers", "column": "age"}])
    assert len(world.dataset_lineage("customers")) == 1
    assert world.storage.listdir("world/datasets/customers") == ["v1.csv"]


def test_a_clean_holds_no_database_lock_while_duckdb_works(sqlite_world: World, monkeypatch) -> None:
    """A clean of a large file takes seconds in DuckDB; SQLite has one writer, so holding the write lock meanwhile
    would stall every goal, event and reader. Another writer with a 0.5 s busy timeout gets in mid-clean."""
    import sqlite3

    from agentmesh.plugins.operations.world import datasets

    database = sqlite_world.home / "agentmesh.db"
    wrote: list[str] = []

    def run_operations_while_another_writes(con, ops):  # type: ignore[no-untyped-def]
        other = sqlite3.connect(database, timeout=0.5, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            wrote.append(other.execute("SELECT name FROM world_meta WHERE name = 'datasets'").fetchone()[0])
            other.execute("ROLLBACK")
        finally:
            other.close()
        return run_operations(con, ops)

    run_operations = datasets.run_operations
    monkeypatch.setattr(datasets, "run_operations", run_operations_while_another_writes)
    result = sqlite_world.clean_dataset("customers", [{"op": "dedupe"}])
    assert wrote == ["datasets"] and result["version"] == 2


def test_a_clean_overtaken_by_another_cleans_the_version_that_landed(world: World, monkeypatch) -> None:
    """Two cleans of one dataset at once: the one that records second cleans the first one's version again,
    so no version is lost and lineage stays a line."""
    from agentmesh.plugins.operations.world import datasets

    run_operations = datasets.run_operations
    overtaken: list[dict] = []
    calls = []

    def another_clean_lands_first(con, ops):  # type: ignore[no-untyped-def]
        calls.append(ops)
        if len(calls) == 1:  # the first clean is in DuckDB; the other one runs and records meanwhile
            overtaken.append(world.clean_dataset("customers", [{"op": "trim", "column": "email"}], key="other"))
        return run_operations(con, ops)

    monkeypatch.setattr(datasets, "run_operations", another_clean_lands_first)
    result = world.clean_dataset("customers", [{"op": "dedupe"}], key="mine")
    assert overtaken[0]["version"] == 2 and len(calls) == 3  # mine, the other, mine again on version 2
    assert (result["version"], result["parent_version"]) == (3, 2)
    lineage = world.dataset_lineage("customers")
    assert [(v["parent"], v["key"]) for v in lineage] == [(None, None), (1, "other"), (2, "mine")]
    assert world.clean_dataset("customers", [{"op": "dedupe"}], key="mine")["replayed"]
    files = world.storage.listdir("world/datasets/customers")
    assert not [n for n in files if n.startswith(".staging-")]
    assert set(files) >= {"v1.csv", "v2.csv", "v3.csv"}
