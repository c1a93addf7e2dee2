"""Fixtures for the MCP tests: the file the flaky server records its calls in, the flaky server over streamable
HTTP, and no MCP connection left over from one test to the next."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_harness import FLAKY, free_port, wait_for_port


@pytest.fixture(autouse=True)
def _own_connections() -> Iterator[None]:
    yield
    from agentmesh.tools import _mcp_pool

    _mcp_pool.close_all()  # the next test starts its servers afresh


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the flaky server records each call it receives (FLAKY_CALLS)."""
    path = tmp_path / "flaky-calls.jsonl"
    monkeypatch.setenv("FLAKY_CALLS", str(path))
    return path


@pytest.fixture
def flaky_http(tmp_path: Path, calls: Path) -> Iterator[tuple[str, str]]:
    """The flaky server over streamable HTTP on a free local port: (its URL, the token it requires)."""
    port, token = free_port(), f"flaky-{secrets.token_hex(8)}"
    with (tmp_path / "flaky-http.log").open("w") as log:
        process = subprocess.Popen([sys.executable, str(FLAKY), "http", str(port)], stdout=log, stderr=log,
                                   env={**os.environ, "FLAKY_TOKEN": token, "FLAKY_CALLS": str(calls)})
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}/mcp", token
    finally:
        process.terminate()
        process.wait(10)
