"""Profiling a table with DuckDB: nulls, duplicates, type violations, outliers, inconsistent categories.

Every figure comes from SQL over the whole table (no sampling, no Python loops over rows). The quality
score is 100 minus a capped penalty per dimension, each proportional to the share of cells (or rows) the
problem touches::

    completeness  null cells / cells            × 300, at most 20
    validity      type-violating cells / cells  × 1000, at most 25
    uniqueness    duplicate rows / rows         × 300, at most 25
    consistency   category-variant cells / cells × 300, at most 15
    outliers      outlying cells / cells        × 500, at most 15
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

__all__ = ["ident", "literal", "load_table", "profile_table"]

NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "UBIGINT", "UINTEGER")
# A text column is "meant" to be the first of these that most of its values parse as.
CANDIDATES = (("integer", "BIGINT"), ("float", "DOUBLE"), ("date", "DATE"), ("timestamp", "TIMESTAMP"))
MEANT_SHARE = 0.8
IQR_FENCE = 3.0  # Tukey's "far out" fences: planted errors, not the tails of a normal distribution
CATEGORY_MAX_DISTINCT = 50
ROW = "__row"  # the original row order, kept while cleaning and dropped on output


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def load_table(con: duckdb.DuckDBPyConnection, path: str, fmt: str, table: str = "t") -> None:
    """Read a CSV or Parquet file into a table, with its row order in ``__row``."""
    if fmt == "parquet":
        source = f"read_parquet({literal(path)})"
    else:
        source = f"read_csv({literal(path)}, header=true)"
    query = f"CREATE OR REPLACE TABLE {table} AS SELECT row_number() OVER () AS {ROW}, * FROM {source}"
    try:
        con.execute(query)
    except duckdb.ConversionException:
        # A bad value past the type sniffer's sample: read the whole file to choose the types.
        con.execute(query.replace("header=true)", "header=true, sample_size=-1)"))


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
    return [(name, dtype) for name, dtype in rows if name != ROW]


def _is_numeric(dtype: str) -> bool:
    return dtype.split("(")[0] in NUMERIC


def _blank(col: str, dtype: str) -> str:
    return f"({col} IS NULL OR trim({col}) = '')" if dtype == "VARCHAR" else f"({col} IS NULL)"


def _parses(col: str, sql: str) -> str:
    # TRY_CAST('176.54' AS BIGINT) rounds instead of failing: an integer column must look like one.
    if sql == "BIGINT":
        return f"coalesce(regexp_full_match(trim({col}), '[+-]?[0-9]+'), FALSE)"
    return f"TRY_CAST(nullif(trim({col}), '') AS {sql}) IS NOT NULL"


def category_key(value: str) -> str:
    return re.sub(r"[^0-9a-z]", "", value.lower())


def profile_table(
    con: duckdb.DuckDBPyConnection, table: str = "t", *, key_column: str | None = None
) -> dict[str, Any]:
    cols = _columns(con, table)
    parts = ["count(*)"]
    for name, dtype in cols:
        c = ident(name)
        parts += [f"count(*) FILTER (WHERE {_blank(c, dtype)})", f"approx_count_distinct({c})"]
        if dtype == "VARCHAR":
            parts += [f"count(*) FILTER (WHERE {_parses(c, sql)})" for _, sql in CANDIDATES]
    first = con.execute(f"SELECT {', '.join(parts)} FROM {table}").fetchone()
    assert first is not None
    rows = first[0]
    info: list[dict[str, Any]] = []
    at = 1
    for name, dtype in cols:
        nulls, distinct = first[at], first[at + 1]
        at += 2
        col: dict[str, Any] = {
            "name": name,
            "type": dtype,
            "null_count": nulls,
            "null_rate": round(nulls / rows, 4) if rows else 0.0,
            "distinct": distinct,
        }
        if dtype == "VARCHAR":
            parsed = first[at : at + len(CANDIDATES)]
            at += len(CANDIDATES)
            filled = rows - nulls
            for (label, sql), ok in zip(CANDIDATES, parsed, strict=True):
                if filled and ok < filled and ok >= MEANT_SHARE * filled:
                    c = ident(name)
                    bad = f"NOT {_blank(c, dtype)} AND NOT {_parses(c, sql)}"
                    examples = con.execute(
                        f"SELECT DISTINCT {c} FROM {table} WHERE {bad} ORDER BY 1 LIMIT 3"
                    ).fetchall()
                    col.update(intended_type=label, type_violations=filled - ok,
                               violation_examples=[e[0] for e in examples])
                    break
        info.append(col)

    _outliers(con, table, cols, info)
    for name, dtype in cols:
        col = next(i for i in info if i["name"] == name)
        if dtype == "VARCHAR" and "intended_type" not in col and col["distinct"] <= CATEGORY_MAX_DISTINCT * 1.1:
            _categories(con, table, name, col)

    duplicate_rows = rows - con.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT * EXCLUDE ({ROW}) FROM {table})"
    ).fetchone()[0]  # type: ignore[index]
    duplicate_keys = None
    if key_column and any(n == key_column for n, _ in cols):
        k = ident(key_column)
        duplicate_keys = con.execute(
            f"SELECT count({k}) - count(DISTINCT {k}) FROM {table}"
        ).fetchone()[0]  # type: ignore[index]
    return _summarise(rows, info, duplicate_rows, key_column, duplicate_keys)


def _outliers(con: duckdb.DuckDBPyConnection, table: str, cols: list[tuple[str, str]], info: list[dict]) -> None:
    numeric = {}
    for (name, dtype), col in zip(cols, info, strict=True):
        if _is_numeric(dtype):
            numeric[name] = f"CAST({ident(name)} AS DOUBLE)"
        elif col.get("intended_type") in ("integer", "float"):
            numeric[name] = f"TRY_CAST(trim({ident(name)}) AS DOUBLE)"
    if not numeric or not info:
        return
    quartiles = con.execute(
        "SELECT " + ", ".join(f"quantile_cont({x}, [0.25, 0.75])" for x in numeric.values()) + f" FROM {table}"
    ).fetchone()
    assert quartiles is not None
    bounds = {}
    for (name, _), q in zip(numeric.items(), quartiles, strict=True):
        if q and q[0] is not None and q[1] > q[0]:
            spread = q[1] - q[0]
            bounds[name] = (q[0] - IQR_FENCE * spread, q[1] + IQR_FENCE * spread)
    if not bounds:
        return
    counts = con.execute(
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {numeric[n]} < {lo!r} OR {numeric[n]} > {hi!r})" for n, (lo, hi) in bounds.items())
        + f" FROM {table}"
    ).fetchone()
    assert counts is not None
    for (name, (lo, hi)), count in zip(bounds.items(), counts, strict=True):
        col = next(i for i in info if i["name"] == name)
        col["outliers"] = count
        col["outlier_bounds"] = [round(lo, 3), round(hi, 3)]


def _categories(con: duckdb.DuckDBPyConnection, table: str, name: str, col: dict[str, Any]) -> None:
    c = ident(name)
    counts = con.execute(
        f"SELECT {c}, count(*) FROM {table} WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    groups: dict[str, list[tuple[str, int]]] = {}
    for value, n in counts:
        groups.setdefault(category_key(value), []).append((value, n))
    inconsistent: list[dict[str, Any]] = []
    for members in groups.values():
        if len(members) > 1:
            canonical = members[0][0].strip()  # the most frequent spelling, trimmed
            variants = {v: n for v, n in members if v != canonical}
            inconsistent.append({"canonical": canonical, "variants": variants})
    if inconsistent:
        col["inconsistent_categories"] = inconsistent
        col["variant_rows"] = sum(n for g in inconsistent for n in g["variants"].values())


def _summarise(
    rows: int, info: list[dict[str, Any]], duplicate_rows: int, key_column: str | None, duplicate_keys: int | None
) -> dict[str, Any]:
    cells = max(1, rows * len(info))
    nulls = sum(c["null_count"] for c in info)
    violations = sum(c.get("type_violations", 0) for c in info)
    variants = sum(c.get("variant_rows", 0) for c in info)
    outliers = sum(c.get("outliers", 0) for c in info)
    dupes = max(duplicate_rows, duplicate_keys or 0)
    penalties = {
        "completeness": min(20.0, nulls / cells * 300),
        "validity": min(25.0, violations / cells * 1000),
        "uniqueness": min(25.0, dupes / max(rows, 1) * 300),
        "consistency": min(15.0, variants / cells * 300),
        "outliers": min(15.0, outliers / cells * 500),
    }
    issues, suggested = [], []
    for c in info:
        name = c["name"]
        if c.get("variant_rows"):
            mapping = {v: g["canonical"] for g in c["inconsistent_categories"] for v in g["variants"]}
            issues.append(f"{name}: {c['variant_rows']} rows spell a category differently ({', '.join(map(repr, list(mapping)[:4]))})")
            suggested.append({"op": "map_categories", "column": name, "mapping": mapping})
    for c in info:
        if c.get("type_violations"):
            issues.append(
                f"{c['name']}: {c['type_violations']} values are not {c['intended_type']} (e.g. {c['violation_examples'][0]!r})"
            )
            suggested.append({"op": "cast", "column": c["name"], "type": c["intended_type"]})
    if duplicate_rows:
        issues.append(f"{duplicate_rows} duplicate rows")
    if duplicate_keys:
        issues.append(f"{duplicate_keys} rows repeat a {key_column}")
    if duplicate_rows or duplicate_keys:
        suggested.append({"op": "dedupe", "columns": [key_column] if duplicate_keys else None})
    for c in info:
        if c.get("outliers"):
            lo, hi = c["outlier_bounds"]
            issues.append(f"{c['name']}: {c['outliers']} outliers outside [{lo}, {hi}]")
            suggested.append({"op": "clip_outliers", "column": c["name"], "method": "iqr"})
    for c in info:
        if c["null_count"]:
            issues.append(f"{c['name']}: {c['null_count']} nulls ({c['null_rate']:.1%})")
            if c["name"] == key_column:
                suggested.append({"op": "drop_nulls", "column": c["name"]})
    return {
        "rows": rows,
        "column_count": len(info),
        "quality_score": round(100 - sum(penalties.values()), 1),
        "penalties": {k: round(v, 2) for k, v in penalties.items()},
        "duplicate_rows": duplicate_rows,
        "key_column": key_column,
        "duplicate_keys": duplicate_keys,
        "columns": info,
        "issues": issues,
        "suggested_operations": suggested,
    }
