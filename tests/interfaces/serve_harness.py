"""Helpers for the interface tests: a real ``agentmesh serve`` process on a free port with its own
AGENTMESH_HOME whose policy makes ``scale_service`` wait for approval, and a Server-Sent Events reader."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentmesh.core.settings import DEFAULT_POLICY_FILE

TOKEN = "test-token-7f3a"
ARTIFACTS = Path(__file__).parent / "artifacts"
AGENTMESH = [sys.executable, "-m", "agentmesh"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_home(path: Path, *, policy_extra: str = "") -> Path:
    """A home whose policy requires approval for scale_service (plus ``policy_extra``, top-level keys)."""
    path.mkdir(parents=True, exist_ok=True)
    policy = DEFAULT_POLICY_FILE.read_text()
    assert "approval_required = []" in policy
    (path / "policy.toml").write_text(policy.replace("approval_required = []",
                                                     'approval_required = ["scale_service"]\n' + policy_extra))
    return path


def child_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTMESH_", "OPENAI_"))}
    env.update(AGENTMESH_HOME=str(home), PYTHONUNBUFFERED="1", COLUMNS="120", **extra)
    return env


@dataclass(kw_only=True)
class Server:
    url: str
    token: str | None
    home: Path
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, *, auth: bool = True, timeout: float = 60.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@contextlib.contextmanager
def running_server(root: Path, *, token: str | None = TOKEN, env: dict[str, str] | None = None,
                   policy_extra: str = "", args: tuple[str, ...] = ()) -> Iterator[Server]:
    """`agentmesh serve` (with ``args``) in a subprocess, up once /healthz answers; stopped on exit."""
    home = make_home(root / "home", policy_extra=policy_extra)
    port = free_port()
    log = root / "server.log"
    extra = {**({"AGENTMESH_API_TOKEN": token} if token else {}), **(env or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen([*AGENTMESH, "serve", "--port", str(port), "--log-level", "warning", *args],
                                   cwd=root, env=child_env(home, **extra), stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"agentmesh serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"agentmesh serve did not answer /healthz in 120 s:\n{log.read_text()}")
        time.sleep(0.1)
    try:
        yield Server(url=url, token=token, home=home, process=process, log=log)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def iter_sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Events of a Server-Sent Events response, each with its ``id:`` as ``_id``."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                event = json.loads(fields["data"])
                event["_id"] = fields.get("id")
                yield event
            fields = {}
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            fields[key] = fields[key] + "\n" + value if key in fields and key == "data" else value


def read_events(client: httpx.Client, run_id: str, *, last_event_id: int | None = None,
                timeout: float = 120.0) -> list[dict[str, Any]]:
    """Every event the server streams until it ends the stream (the run reached a terminal status)."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    with client.stream("GET", f"/v1/goals/{run_id}/events", headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(iter_sse(response))
