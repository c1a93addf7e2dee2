"""Cleaning operations, validated with pydantic and run as DuckDB SQL, one table per step.

    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(CleanOperation).validate_python({"op": "trim", "column": "country"})
    Trim(op='trim', column='country')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agentmesh.plugins.operations.world._profile import ROW, ident, literal

__all__ = ["CleanOperation", "CleanResult", "OPERATIONS", "parse_operations", "run_operations"]


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dedupe(_Op):
    """Keep the first row of each group of rows equal on `columns` (all columns when omitted)."""

    op: Literal["dedupe"]
    columns: list[str] | None = Field(default=None, description="Key columns; omit to compare whole rows.")


class DropNulls(_Op):
    """Drop rows whose `column` is null or blank."""

    op: Literal["drop_nulls"]
    column: str


class FillNulls(_Op):
    """Replace nulls (and blank text) in `column` with `value`."""

    op: Literal["fill_nulls"]
    column: str
    value: str | int | float | bool


class Cast(_Op):
    """Convert `column` to `type`; rows whose value does not convert are moved to a quarantine file."""

    op: Literal["cast"]
    column: str
    type: Literal["integer", "float", "date", "timestamp", "boolean", "string"]


class Trim(_Op):
    """Strip leading and trailing whitespace from `column`."""

    op: Literal["trim"]
    column: str


class NormalizeText(_Op):
    """Trim `column`, collapse inner whitespace, and change its case."""

    op: Literal["normalize_text"]
    column: str
    case: Literal["lower", "upper", "keep"] = "lower"


class MapCategories(_Op):
    """Replace values of `column` exactly equal to a key of `mapping` with its value."""

    op: Literal["map_categories"]
    column: str
    mapping: dict[str, str] = Field(min_length=1, max_length=500)


class ClipOutliers(_Op):
    """Clamp numbers of `column` into the fences of `method` (iqr: quartiles ± threshold×IQR, default 3;
    zscore: mean ± threshold×stddev, default 3)."""

    op: Literal["clip_outliers"]
    column: str
    method: Literal["iqr", "zscore"] = "iqr"
    threshold: float | None = Field(default=None, gt=0)


class DropOutliers(ClipOutliers):
    """Drop rows whose `column` lies outside the fences of `method`."""

    op: Literal["drop_outliers"]  # type: ignore[assignment]


CleanOperation = Annotated[
    Dedupe | DropNulls | FillNulls | Cast | Trim | NormalizeText | MapCategories | ClipOutliers | DropOutliers,
    Field(discriminator="op"),
]
OPERATIONS = ("dedupe", "drop_nulls", "fill_nulls", "cast", "trim", "normalize_text", "map_categories",
              "clip_outliers", "drop_outliers")
_operations = TypeAdapter(list[CleanOperation])
_SQL_TYPES = {"integer": "BIGINT", "float": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMP",
              "boolean": "BOOLEAN", "string": "VARCHAR"}


def parse_operations(operations: list[Any]) -> list[Any]:
    """Validate a list of operations given as models or dicts (a pydantic ValidationError says what is wrong)."""
    if not operations:
        raise ValueError("operations must list at least one cleaning operation")
    if len(operations) > 20:
        raise ValueError("at most 20 operations per clean_dataset call")
    return _operations.validate_python([o.model_dump() if isinstance(o, BaseModel) else o for o in operations])


@dataclass(kw_only=True)
class CleanResult:
    """What running the operations did."""

    table: str
    """The DuckDB table holding the cleaned rows (with `__row`)."""
    steps: list[dict[str, Any]] = field(default_factory=list)
    """Per operation: what it was and how many rows or values it touched."""
    quarantine: list[tuple[str, str]] = field(default_factory=list)
    """(column, DuckDB table) of rows a cast could not convert."""


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
    return {n: t for n, t in rows if n != ROW}


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    return row[0] if row else None


def run_operations(con: duckdb.DuckDBPyConnection, operations: list[Any], source: str = "t") -> CleanResult:
    result = CleanResult(table=source)
    cur = source
    for i, op in enumerate(operations, start=1):
        cols = _columns(con, cur)
        named = (op.columns or []) if isinstance(op, Dedupe) else [op.column]
        for name in named:
            if name not in cols:
                raise ValueError(f"operation {i} ({op.op}): no column {name!r}; columns: {', '.join(cols)}")
        nxt = f"s{i}"
        before = _scalar(con, f"SELECT count(*) FROM {cur}")
        step: dict[str, Any] = {"op": op.op, **({"column": op.column} if hasattr(op, "column") else {})}
        select, values_changed = _step(con, op, cur, cols, step, result, i)
        con.execute(f"CREATE OR REPLACE TABLE {nxt} AS {select}")
        after = _scalar(con, f"SELECT count(*) FROM {nxt}")
        if values_changed is not None:
            step["values_changed"] = values_changed
        if after != before:
            step["rows_removed"] = before - after
        result.steps.append(step)
        cur = nxt
    result.table = cur
    return result


def _step(
    con: duckdb.DuckDBPyConnection, op: Any, cur: str, cols: dict[str, str], step: dict[str, Any],
    result: CleanResult, i: int,
) -> tuple[str, int | None]:
    """The SELECT producing the next table, and how many values it changes in place (if it does)."""
    if isinstance(op, Dedupe):
        keys = op.columns or list(cols)
        step["columns"] = keys
        over = ", ".join(ident(k) for k in keys)
        return f"SELECT * FROM {cur} QUALIFY row_number() OVER (PARTITION BY {over} ORDER BY {ROW}) = 1", None

    c, dtype = ident(op.column), cols[op.column]
    blank = f"({c} IS NULL OR trim({c}) = '')" if dtype == "VARCHAR" else f"({c} IS NULL)"
    if isinstance(op, DropNulls):
        return f"SELECT * FROM {cur} WHERE NOT {blank}", None

    def replace(expr: str, where: str = "TRUE") -> tuple[str, int]:
        changed = _scalar(con, f"SELECT count(*) FROM {cur} WHERE {where} AND {c} IS DISTINCT FROM {expr}")
        return f"SELECT * REPLACE ({expr} AS {c}) FROM {cur} WHERE {where}", changed

    if isinstance(op, FillNulls):
        value = literal(op.value)
        fill = f"CAST({value} AS {dtype})" if dtype != "VARCHAR" else f"CAST({value} AS VARCHAR)"
        return replace(f"CASE WHEN {blank} THEN {fill} ELSE {c} END")
    if isinstance(op, Trim | NormalizeText):
        if dtype != "VARCHAR":
            return f"SELECT * FROM {cur}", 0
        if isinstance(op, Trim):
            return replace(f"trim({c})")
        text = f"regexp_replace(trim({c}), '\\s+', ' ', 'g')"
        return replace({"lower": f"lower({text})", "upper": f"upper({text})", "keep": text}[op.case])
    if isinstance(op, MapCategories):
        if dtype != "VARCHAR":
            raise ValueError(f"map_categories works on text columns; {op.column} is {dtype}")
        cases = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in op.mapping.items())
        return replace(f"CASE {c} {cases} ELSE {c} END")
    if isinstance(op, Cast):
        sql_type = _SQL_TYPES[op.type]
        source = f"nullif(trim({c}), '')" if dtype == "VARCHAR" else c
        converted = f"TRY_CAST({source} AS {sql_type})"
        if op.type == "integer" and dtype == "VARCHAR":
            # TRY_CAST rounds '1.5' to 2; an integer must look like one.
            converted = f"CASE WHEN regexp_full_match(trim({c}), '[+-]?[0-9]+') THEN {converted} END"
        bad = f"({source} IS NOT NULL AND {converted} IS NULL)"
        quarantine = f"q{i}"
        con.execute(f"CREATE OR REPLACE TABLE {quarantine} AS SELECT * FROM {cur} WHERE {bad}")
        step["type"] = op.type
        step["rows_quarantined"] = _scalar(con, f"SELECT count(*) FROM {quarantine}")
        result.quarantine.append((op.column, quarantine))
        return f"SELECT * REPLACE ({converted} AS {c}) FROM {cur} WHERE NOT {bad}", None
    if isinstance(op, ClipOutliers):  # and DropOutliers
        if dtype.split("(")[0] not in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE",
                                       "DECIMAL", "UBIGINT", "UINTEGER"):
            raise ValueError(f"{op.op} needs a numeric column; {op.column} is {dtype}: cast it first")
        k = op.threshold or 3.0
        if op.method == "iqr":
            q = _scalar(con, f"SELECT quantile_cont({c}, [0.25, 0.75]) FROM {cur}")
            lo, hi = (q[0] - k * (q[1] - q[0]), q[1] + k * (q[1] - q[0])) if q else (None, None)
        else:
            row = con.execute(f"SELECT avg({c}), stddev_pop({c}) FROM {cur}").fetchone()
            lo, hi = (row[0] - k * row[1], row[0] + k * row[1]) if row and row[0] is not None else (None, None)
        if lo is None or hi is None:
            return f"SELECT * FROM {cur}", 0
        step["bounds"] = [round(lo, 4), round(hi, 4)]
        outside = f"({c} < {lo!r} OR {c} > {hi!r})"
        if isinstance(op, DropOutliers):
            return f"SELECT * FROM {cur} WHERE {c} IS NULL OR NOT {outside}", None
        clipped = f"CAST(least(greatest({c}, {lo!r}), {hi!r}) AS {dtype})"
        return replace(f"CASE WHEN {outside} THEN {clipped} ELSE {c} END")
    raise ValueError(f"unknown operation {op.op!r}; known: {', '.join(OPERATIONS)}")


def write_table(con: duckdb.DuckDBPyConnection, table: str, location: str, fmt: str) -> None:
    """Write a table in its original row order, without ``__row``, to a new file (a staging one: it is moved into
    place only once complete)."""
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    con.execute(f"COPY (SELECT * EXCLUDE ({ROW}) FROM {table} ORDER BY {ROW}) TO {literal(location)} ({options})")
