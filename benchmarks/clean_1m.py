"""Clean a 1M-row CSV with quality problems through the world, and print the seconds it takes.

    .venv/bin/python benchmarks/clean_1m.py [--rows 1000000]

The file is generated with DuckDB (duplicates, 'N/A' in a numeric column, blank values, category
spellings, outliers), registered in a throwaway world as a sample dataset, then profiled and cleaned with
the profile's own suggested operations. Profile and clean are timed separately; init (which profiles v1)
is reported too. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import duckdb

from agentmesh.persistence.database import get_engine
from agentmesh.plugins.operations.limits import WorldLimits
from agentmesh.plugins.operations.world import World


def make_csv(path: Path, rows: int) -> None:
    # Deterministic: every value is a function of the row number i.
    duckdb.connect().execute(f"""
        COPY (
            SELECT
                'C' || lpad(CAST(i % {rows - rows // 100} AS VARCHAR), 8, '0') AS customer_id,
                CASE WHEN i % 97 = 0 THEN NULL ELSE 'user' || i || '@example.com' END AS email,
                CASE i % 50 WHEN 0 THEN 'us ' WHEN 1 THEN 'U.S.' WHEN 2 THEN 'gb'
                     ELSE ['US', 'GB', 'DE', 'FR', 'CA'][i % 5 + 1] END AS country,
                CASE WHEN i % 211 = 0 THEN 'N/A' WHEN i % 5003 = 0 THEN '999'
                     ELSE CAST(18 + (i * 7919) % 62 AS VARCHAR) END AS age,
                round(50 + (i * 104729) % 1000 / 3.0, 2) AS lifetime_value_usd
            FROM range({rows}) t(i)
        ) TO '{path}' (FORMAT csv, HEADER true)
    """)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sample = root / "sample"
        (sample / "datasets").mkdir(parents=True)
        t0 = time.perf_counter()
        make_csv(sample / "datasets" / "big.csv", args.rows)
        generated = time.perf_counter() - t0
        (sample / "world.json").write_text(json.dumps({"datasets": [
            {"name": "big", "file": "big.csv", "key_column": "customer_id", "description": "benchmark"}]}))
        home = root / "home"
        world = World(get_engine(f"sqlite:///{home / 'agentmesh.db'}"), home=home, limits=WorldLimits())
        t0 = time.perf_counter()
        world.init(str(sample))
        init_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        profile = world.profile_dataset("big")
        profile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = world.clean_dataset("big", profile["suggested_operations"], key="bench")
        clean_s = time.perf_counter() - t0
    print(f"rows {result['rows_before']:,} -> {result['rows_after']:,}; quality {result['quality_before']} -> "
          f"{result['quality_after']}; operations {[o['op'] for o in result['operations']]}")
    print(f"generate {generated:.2f} s; init (copy + profile v1) {init_s:.2f} s; profile (stored) {profile_s:.3f} s; "
          f"clean (load, {len(result['operations'])} operations, write v2, profile v2) {clean_s:.2f} s")


if __name__ == "__main__":
    main()
