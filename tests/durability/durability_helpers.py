"""Helpers for durability tests: agentmesh in real subprocesses, and reading their database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from agentmesh.testing import OpenAIServer

AGENTMESH = [sys.executable, "-m", "agentmesh"]


def cli_env(home: Path, server: OpenAIServer | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ, AGENTMESH_HOME=str(home), **extra)
    if server is not None:
        env.update(AGENTMESH_MODEL="gpt-4o-mini", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=server.base_url)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENTMESH, *args], env=env, capture_output=True, text=True, timeout=timeout)


def db(where: Path | str) -> sa.Engine:
    """The agentmesh database of a home folder (SQLite), or at a URL."""
    if isinstance(where, str):
        return sa.create_engine(where.replace("postgresql://", "postgresql+psycopg://", 1))
    return sa.create_engine(f"sqlite:///{where / 'agentmesh.db'}")


def query(where: Path | str, sql: str, **params: Any) -> list[Any]:
    if isinstance(where, Path) and not (where / "agentmesh.db").exists():
        return []
    try:
        engine = db(where)
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # tables not created yet
        return []
    finally:
        engine.dispose()


def wait_for(condition: Any, *, timeout: float = 120, what: str = "condition", log: Path | None = None) -> Any:
    """Poll a condition of the database (another process's state) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def loads(stdout: str) -> dict[str, Any]:
    return json.loads(stdout)


def stop(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Stop a background process and its children (it was started in a new session)."""
    import signal

    for sig, grace in ((signal.SIGINT, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
