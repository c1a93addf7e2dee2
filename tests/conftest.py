"""Shared fixtures: an isolated AGENTMESH_HOME per test, no network beyond loopback, a real PostgreSQL.

Real model requests are forbidden: any socket to a non-loopback address fails the test. Tests of the
OpenAI HTTP path start their own local OpenAI-protocol server (``agentmesh.testing``) or replay cassettes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Prefect: one Prefect home for the whole test session, analytics off.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="agentmesh-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_DIR / "prefect"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
for _var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENTMESH_MODEL", "AGENTMESH_HOME", "AGENTMESH_DATABASE_URL"):
    os.environ.pop(_var, None)

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address):  # type: ignore[no-untyped-def]
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            raise RuntimeError(f"tests may not reach the network ({host}); use a local server or a cassette")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh AGENTMESH_HOME for one test, used by every Settings() the test creates."""
    path = tmp_path / "home"
    monkeypatch.setenv("AGENTMESH_HOME", str(path))
    monkeypatch.chdir(tmp_path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A server URL (no database part): AGENTMESH_TEST_POSTGRES_URL, or a throwaway cluster started here."""
    url = os.environ.get("AGENTMESH_TEST_POSTGRES_URL")
    if url:
        yield url.rstrip("/")
        return
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql, or set AGENTMESH_TEST_POSTGRES_URL)")
    bindir = bins[-1].parent
    data = Path(tempfile.mkdtemp(prefix="agentmesh-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data / "db"), "-U", "postgres", "-A", "trust"],
                   check=True, capture_output=True)
    subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w",
                    "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new, empty database on the test PostgreSQL server."""
    import psycopg

    name = f"t{int(time.time() * 1000)}_{os.getpid()}_{_free_port()}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The local Prefect server the runs of this test session started is stopped when the session ends.

    With pytest-xdist the workers inherit the controller's PREFECT_HOME and share one server; only the
    controller stops it, or a worker that finishes first would kill it under the others.
    """
    if hasattr(session.config, "workerinput"):
        return
    from agentmesh.runtime.prefect import stop_local_server

    stop_local_server(Path(os.environ["PREFECT_HOME"]))
