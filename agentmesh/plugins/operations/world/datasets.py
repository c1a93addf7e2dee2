"""Datasets: versioned CSV/Parquet files at ``world/datasets/<name>/v<N>.<ext>`` in the storage every machine shares
(``storage_url``: the agentmesh home by default, ``s3://…`` across machines), profiled and cleaned with DuckDB.
Cleaning always writes a new version; lineage and quality reports live in the database."""

from __future__ import annotations

import functools
import re
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, insert, select, update

from agentmesh.core.exceptions import NotFoundError, PolicyViolation, ToolError
from agentmesh.core.storage import Storage
from agentmesh.persistence.database import utcnow
from agentmesh.plugins.operations.world._atomic import atomic, stored_effect
from agentmesh.plugins.operations.world._clean import parse_operations, run_operations, write_table
from agentmesh.plugins.operations.world._profile import load_table, profile_table
from agentmesh.plugins.operations.world._tables import dataset_versions, datasets

if TYPE_CHECKING:
    from pathlib import Path

    from agentmesh.plugins.operations.limits import WorldLimits

__all__ = ["DatasetsMixin", "profile_file"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class _Superseded(Exception):
    """Another clean recorded a new version while this one ran: clean that version instead."""


def profile_file(storage: Storage, path: str, fmt: str, *, key_column: str | None = None) -> dict[str, Any]:
    con = storage.duckdb()
    try:
        load_table(con, storage.url(path), fmt)
        return profile_table(con, key_column=key_column)
    finally:
        con.close()


class DatasetsMixin:
    engine: Engine
    limits: WorldLimits
    storage: Storage

    DATASETS = "world/datasets"
    """The datasets' folder in the storage; a version's ``path`` is relative to the storage's root."""

    def _dataset(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        # Names are looked up, never joined into a path unchecked: "../../etc/passwd" is simply unknown.
        row = None
        if isinstance(name, str) and _NAME.match(name):
            query = select(datasets).where(datasets.c.name == name)
            row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            known = ", ".join(r.name for r in conn.execute(select(datasets.c.name).order_by(datasets.c.name)))
            raise NotFoundError(f"no dataset {name!r}; known datasets: {known or 'none (run `agentmesh world init`)'}")
        return row

    def _version(self, conn: Connection, name: str, number: int) -> Any:
        return conn.execute(
            select(dataset_versions).where(dataset_versions.c.dataset == name, dataset_versions.c.number == number)
        ).one()

    def _add_dataset(self, conn: Connection, source: Path, *, name: str, description: str, key_column: str | None) -> None:
        """Copy a sample file in as version 1 and store its profile."""
        if not _NAME.match(name):
            raise ValueError(f"dataset name {name!r}: use lowercase letters, digits, '_' and '-'")
        fmt = "parquet" if source.suffix == ".parquet" else "csv"
        target = f"{self.DATASETS}/{name}/v1.{fmt}"
        self.storage.put(source, target)
        profile = profile_file(self.storage, target, fmt, key_column=key_column)
        now = utcnow()
        conn.execute(insert(datasets).values(name=name, description=description, format=fmt, key_column=key_column,
                                             latest_version=1, version=1, updated=now))
        conn.execute(insert(dataset_versions).values(
            dataset=name, number=1, path=target, rows=profile["rows"],
            quality_score=profile["quality_score"], profile=profile, parent=None, operations=[], report=None,
            key=None, created=now))

    def list_datasets(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(datasets).order_by(datasets.c.name)).all()
            out = []
            for row in rows:
                latest = self._version(conn, row.name, row.latest_version)
                out.append({
                    "name": row.name,
                    "description": row.description,
                    "format": row.format,
                    "versions": row.latest_version,
                    "latest_version": row.latest_version,
                    "rows": latest.rows,
                    "quality_score": latest.quality_score,
                    "issues": len(latest.profile["issues"]),
                    "protected": row.name in self.limits.protected_datasets,
                })
        return {"datasets": out}

    def profile_dataset(self, dataset: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._dataset(conn, dataset)
            latest = self._version(conn, row.name, row.latest_version)
        return {
            "dataset": row.name,
            "version": latest.number,
            "format": row.format,
            "protected": row.name in self.limits.protected_datasets,
            **latest.profile,
        }

    def dataset_file(self, dataset: str, version: int | None = None) -> str:
        """The file of one version (the latest by default), relative to the storage's root."""
        with self.engine.connect() as conn:
            row = self._dataset(conn, dataset)
            return str(self._version(conn, row.name, version or row.latest_version).path)

    def clean_dataset(self, dataset: str, operations: list[Any], *, key: str | None = None) -> dict[str, Any]:
        """Write a cleaned copy of the latest version as a new version.

        DuckDB does the work into a staging folder with no database transaction open (a clean of a million rows
        takes seconds, and SQLite has one writer: every goal, event and reader would wait on it); a short
        transaction then moves the files into place and records the version, if the latest version is still the
        one that was cleaned — otherwise the clean runs again on the version that landed meanwhile."""
        ops = parse_operations(operations)
        for _ in range(5):
            with self.engine.connect() as conn:
                if key is not None and (done := stored_effect(conn, key, "clean_dataset")) is not None:
                    return done
                row = self._dataset(conn, dataset)
                parent = self._version(conn, row.name, row.latest_version)
            if row.name in self.limits.protected_datasets:
                raise PolicyViolation(
                    f"clean_dataset refused: dataset {row.name!r} is protected by policy and may only be profiled."
                )
            staging = f"{self.DATASETS}/{row.name}/.staging-{uuid.uuid4().hex[:12]}"
            try:
                staged = self._clean_into(staging, row, parent, ops)
                return atomic(self.engine, domain="datasets", method="clean_dataset", key=key,
                              apply=functools.partial(self._record_clean, row=row, parent=parent, ops=ops,
                                                      staged=staged, key=key))
            except _Superseded:
                continue
            finally:
                self.storage.remove_tree(staging)
        raise ToolError(f"clean_dataset: {dataset!r} kept changing while it was cleaned; try again")

    def _clean_into(self, staging: str, row: Any, parent: Any, ops: list[Any]) -> dict[str, Any]:
        """Load the parent version, run the operations and write the result and quarantines under ``staging``."""
        self.storage.fs.makedirs(self.storage.path(staging), exist_ok=True)
        con = self.storage.duckdb()
        try:
            load_table(con, self.storage.url(parent.path), row.format)
            cleaned = run_operations(con, ops)
            quarantined = []
            for column, table in cleaned.quarantine:
                count = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                if count:
                    side = f"{staging}/quarantine-{column}.csv"
                    write_table(con, table, self.storage.url(side), "csv")
                    quarantined.append({"column": column, "rows": count, "staged": side})
            target = f"{staging}/cleaned.{row.format}"
            write_table(con, cleaned.table, self.storage.url(target), row.format)
            profile = profile_table(con, cleaned.table, key_column=row.key_column)
        finally:
            con.close()
        return {"target": target, "quarantined": quarantined, "profile": profile, "steps": cleaned.steps}

    def _record_clean(self, conn: Connection, row: Any, parent: Any, ops: list[Any], staged: dict[str, Any],
                      key: str | None) -> dict[str, Any]:
        """Inside the datasets lock: move the staged files into place as the next version and record it."""
        if self._dataset(conn, row.name, lock=True).latest_version != parent.number:
            raise _Superseded
        number = parent.number + 1
        folder = f"{self.DATASETS}/{row.name}"
        target = f"{folder}/v{number}.{row.format}"
        quarantined = []
        for side in staged["quarantined"]:
            final = f"{folder}/v{number}.quarantine-{side['column']}.csv"
            self.storage.move(side["staged"], final)
            quarantined.append({"column": side["column"], "rows": side["rows"], "file": final})
        self.storage.move(staged["target"], target)
        profile = staged["profile"]
        result = {
            "dataset": row.name,
            "version": number,
            "parent_version": parent.number,
            "file": target,
            "rows_before": parent.rows,
            "rows_after": profile["rows"],
            "quality_before": parent.quality_score,
            "quality_after": profile["quality_score"],
            "operations": staged["steps"],
            "quarantined": quarantined,
            "remaining_issues": profile["issues"][:8],
        }
        now = utcnow()
        conn.execute(insert(dataset_versions).values(
            dataset=row.name, number=number, path=result["file"], rows=profile["rows"],
            quality_score=profile["quality_score"], profile=profile, parent=parent.number,
            operations=[o.model_dump() for o in ops], report=result, key=key, created=now))
        conn.execute(update(datasets).where(datasets.c.name == row.name).values(
            latest_version=number, version=datasets.c.version + 1, updated=now))
        return result

    def dataset_lineage(self, dataset: str) -> list[dict[str, Any]]:
        """Every version of a dataset, oldest first: parent, operations, key and quality."""
        with self.engine.connect() as conn:
            row = self._dataset(conn, dataset)
            versions = conn.execute(
                select(dataset_versions).where(dataset_versions.c.dataset == row.name).order_by(dataset_versions.c.number)
            ).all()
        return [{"version": v.number, "parent": v.parent, "file": v.path, "rows": v.rows,
                 "quality_score": v.quality_score, "operations": v.operations, "key": v.key} for v in versions]
