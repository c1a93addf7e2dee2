"""Helpers of the distributed tests (processes standing in for machines)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and its children (it was started in a new session): SIGINT, then SIGKILL."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


def query(home: Path, sql: str, **params: Any) -> list[Any]:
    """Rows of a query on the agentmesh SQLite database of ``home``."""
    engine = sa.create_engine(f"sqlite:///{home / 'agentmesh.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()
