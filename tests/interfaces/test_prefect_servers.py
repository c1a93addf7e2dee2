"""Local Prefect servers do not pile up: one per Prefect home, an idle exit in minutes, and a way to stop them all.

Real servers (`python -m agentmesh.runtime.prefect_server`), each in a Prefect home under the test's tmp_path;
only those are stopped (`under=tmp_path`), never another process's.
"""

from __future__ import annotations

import time
from pathlib import Path

from agentmesh.runtime.prefect import (
    _alive,
    ensure_local_server,
    local_server_state,
    local_servers,
    stop_all_local_servers,
)


def _mine(root: Path) -> list[dict]:
    return [s for s in local_servers() if s["home"] and Path(s["home"]).is_relative_to(root.resolve())]


def _exited(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.5)
    return False


def test_one_server_per_home_idle_exit_and_stop_all(tmp_path: Path) -> None:
    lasting, brief = (tmp_path / "a" / "prefect").resolve(), (tmp_path / "b" / "prefect").resolve()
    try:
        url = ensure_local_server(lasting, wait_s=300, idle_minutes=30)
        assert ensure_local_server(lasting, wait_s=300) == url  # found, not started again
        servers = _mine(tmp_path)
        assert [s["home"] for s in servers] == [str(lasting)], servers
        assert local_server_state(lasting)["pid"] == servers[0]["pid"]

        ensure_local_server(brief, wait_s=300, idle_minutes=0.05)  # 3 s without a request
        pid = local_server_state(brief)["pid"]
        assert {s["home"] for s in _mine(tmp_path)} == {str(lasting), str(brief)}
        assert _exited(pid, within_s=120), "the idle server did not exit by itself"
        assert _alive(servers[0]["pid"]), "the other home's server is not idle-stopped with it"
    finally:
        stopped = stop_all_local_servers(under=tmp_path)
    assert str(lasting) in {s["home"] for s in stopped}
    assert not any(_alive(s["pid"]) for s in stopped)
    assert _mine(tmp_path) == []
    assert local_server_state(lasting) is None  # the state file goes with it: the next run starts a new one
