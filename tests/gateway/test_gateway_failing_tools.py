"""A user's tool that raises and one that hangs: the model hears a clear failure within the tool timeout, the
call is audited ``failed``, and the run goes on to a decision."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from gateway_harness import MeshScript

import agentmesh
from agentmesh.core.settings import Settings
from agentmesh.persistence import audit
from agentmesh.runtime.components import components

HANG_S = 60.0
SLACK_S = 10.0
"""Room for a loaded machine; still far below the hang."""
TIMEOUT_S = 1.0

USER_TOOLS = f'''
import asyncio
import time

from agentmesh.tools import tool


@tool(roles=["analyst"])
def read_disk_stats(volume: str) -> dict:
    """Read the usage of a disk volume.

    Args:
        volume: The volume name.
    """
    raise OSError(f"volume {{volume}} is unreadable: input/output error")


@tool(roles=["analyst"])
def query_slow_backend(query: str) -> dict:
    """Ask a backend that never answers (blocking).

    Args:
        query: What to ask.
    """
    time.sleep({HANG_S})
    return {{"answer": "too late"}}


@tool(roles=["analyst"])
async def query_slow_async_backend(query: str) -> dict:
    """Ask a backend that never answers (async).

    Args:
        query: What to ask.
    """
    await asyncio.sleep({HANG_S})
    return {{"answer": "too late"}}
'''


@pytest.fixture
def tools_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "user_tools"
    folder.mkdir()
    (folder / "flaky.py").write_text(textwrap.dedent(USER_TOOLS), encoding="utf-8")
    return folder


def test_raising_and_hanging_tools_fail_cleanly_and_the_run_decides(home: Path, tools_dir: Path) -> None:
    settings = Settings(model="offline", tools_paths=[tools_dir], tool_timeout_s=TIMEOUT_S, node_retries=0)
    script = MeshScript(steps={"analyst": [
        ("read_disk_stats", {"volume": "data-1"}),
        ("query_slow_backend", {"query": "p95"}),
        ("query_slow_async_backend", {"query": "p95"}),
        ("get_service_metrics", {"service": "checkout-api"}),
    ]})

    events: list[tuple[float, dict]] = []

    result = agentmesh.run_goal("Why is checkout-api slow?", settings=settings, chat_model=script.model(),
                                on_event=lambda e: events.append((time.monotonic(), e)))
    returned = time.monotonic()

    assert result["status"] == "done", result["error"]
    assert result["decision"] is not None
    # Each hung call ends at the timeout, and run_goal returns when the run ends, not when the hung
    # thread does (Prefect's own start-up is outside what is measured).
    started = {e["tool_call_id"]: t for t, e in events if e["type"] == "tool_call"}
    took = {e["tool"]: t - started[e["tool_call_id"]] for t, e in events if e["type"] == "tool_result"}
    for hung in ("query_slow_backend", "query_slow_async_backend"):
        assert TIMEOUT_S <= took[hung] < TIMEOUT_S + SLACK_S, took
    finished = next(t for t, e in events if e["type"] == "run_finished")
    assert returned - finished < 2 * SLACK_S, f"run_goal returned {returned - finished:.1f} s after the run ended"
    seen = script.seen["analyst"]
    assert [r["status"] for r in seen] == ["failed", "failed", "failed", "ok"], seen[3]
    assert seen[0]["error"] == "read_disk_stats raised OSError: volume data-1 is unreadable: input/output error"
    assert seen[1]["error"] == "query_slow_backend did not finish within 1 s"
    assert seen[2]["error"] == "query_slow_async_backend did not finish within 1 s"

    records = audit.list_calls(components(settings).engine, result["run_id"])
    assert [(r.tool, r.status) for r in records] == [
        ("read_disk_stats", "failed"), ("query_slow_backend", "failed"), ("query_slow_async_backend", "failed"),
        ("get_service_metrics", "ok"),
    ]
    for r in records[1:3]:
        assert r.ended is not None
        assert (r.ended - r.started).total_seconds() < TIMEOUT_S + SLACK_S


def test_a_tool_timeout_of_its_own_wins_over_the_setting(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "own_timeout"
    folder.mkdir()
    (folder / "quick.py").write_text(textwrap.dedent('''
        import time

        from agentmesh.tools import tool


        @tool(roles=["analyst"], timeout_s=0.2)
        def quick_check(target: str) -> dict:
            """A check that must answer fast.

            Args:
                target: What to check.
            """
            time.sleep(5)
            return {"ok": True}
    '''), encoding="utf-8")
    settings = Settings(model="offline", tools_paths=[folder], tool_timeout_s=30, node_retries=0)
    script = MeshScript(steps={"analyst": [("quick_check", {"target": "db"})]})

    result = agentmesh.run_goal("Check the database", settings=settings, chat_model=script.model())

    assert result["status"] == "done", result["error"]
    assert script.seen["analyst"][0] == {"status": "failed", "error": "quick_check did not finish within 0.2 s"}
