"""Storage under stress: SQLite in WAL mode with a busy timeout, a writer killed with SIGKILL mid-loop leaves the
database consistent, and ``agentmesh doctor`` finds what is wrong with an installation and says what to fix.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from agentmesh.core.settings import Settings
from agentmesh.interfaces.doctor import run_checks
from agentmesh.persistence import runs as store
from agentmesh.persistence.database import get_engine
from agentmesh.testing import OpenAIServer

AGENTMESH = [sys.executable, "-m", "agentmesh"]


def test_the_sqlite_engine_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5_000
    # Every new connection gets the pragmas, not only the first (raw: a transaction here takes the write lock).
    one, two = engine.raw_connection(), engine.raw_connection()
    try:
        assert [c.cursor().execute("PRAGMA busy_timeout").fetchone()[0] for c in (one, two)] == [30_000, 30_000]
        assert {c.cursor().execute("PRAGMA journal_mode").fetchone()[0] for c in (one, two)} == {"wal"}
    finally:
        one.close()
        two.close()


WRITER = textwrap.dedent("""
    import sys
    from agentmesh.persistence import audit, runs as store
    from agentmesh.persistence.database import get_engine
    engine = get_engine(sys.argv[1])
    i = 0
    while True:  # killed from outside
        run_id = f"run-{i:06d}"
        store.create_run(engine, run_id=run_id, flow_run_id=run_id, goal="g" * 200, graph="mesh", status="running",
                         model="offline", offline=True)
        audit.begin_call(engine, run_id=run_id, tool_call_id="c1", tool="scale_service", args={"replicas": i},
                         status="running", dry_run=False)
        audit.finish_call(engine, run_id, "c1", status="ok", result={"replicas": i, "pad": "x" * 2000})
        store.update_run(engine, run_id, status="done", usage={"model_calls": i})
        i += 1
""")


@pytest.mark.parametrize("writers", [1, 2])
def test_a_writer_killed_mid_write_leaves_the_database_consistent(tmp_path: Path, writers: int) -> None:
    path = tmp_path / "agentmesh.db"
    url = f"sqlite:///{path}"
    get_engine(url)  # tables exist before the writers race to create them
    procs = [subprocess.Popen([sys.executable, "-c", WRITER.replace('f"run-', f'f"w{w}-run-'), url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for w in range(writers)]
    try:
        engine = sa.create_engine(url)
        for _ in range(6000):  # bounded: at most ~5 minutes of 50 ms polls
            with engine.connect() as conn:
                done = conn.execute(sa.text("SELECT count(*) FROM runs WHERE status = 'done'")).scalar()
            if done >= 150 * writers:
                break
            assert all(p.poll() is None for p in procs), procs[0].stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            time.sleep(0.05)
        else:
            pytest.fail("the writers did not get going")
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
        engine.dispose()

    # The WAL and its -shm are left behind as a crash leaves them; a new connection recovers from them.
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        runs = raw.execute("SELECT run_id, status FROM runs").fetchall()
        calls = raw.execute("SELECT run_id, tool_call_id, status, result FROM tool_calls").fetchall()
    statuses = {r: s for r, s in runs}
    # Coherent: every call belongs to a run; each writer left at most its one in-flight run unfinished.
    assert all(c[0] in statuses for c in calls)
    unfinished = [r for r, s in runs if s != "done"]
    assert len(unfinished) <= writers and all(s == "running" for r, s in runs if r in unfinished)
    by_run = {c[0]: c for c in calls}
    for run_id, status in runs:
        if status == "done":
            assert by_run[run_id][2] == "ok" and json.loads(by_run[run_id][3])["pad"] == "x" * 2000
    assert sum(1 for c in calls if c[2] != "ok") <= writers
    # And the library reads it back as usual.
    engine = get_engine(url)
    assert len(store.list_runs(engine, limit=100_000)) == len(runs)


# -- agentmesh doctor --------------------------------------------------------------------------------------


def _doctor(home: Path, **env: str) -> tuple[int, dict, str]:
    full = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "AGENTMESH_LOCAL_PREFECT",
                                                               "OPENAI_API_KEY", "AGENTMESH_MODEL")}
    full.update(AGENTMESH_HOME=str(home), PREFECT_HOME=str(home / "prefect"), **env)
    done = subprocess.run([*AGENTMESH, "doctor", "--json"], env=full, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout), done.stdout + done.stderr


def _by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_doctor_on_a_fresh_offline_install_is_all_ok(home: Path) -> None:
    code, report, _ = _doctor(home)
    assert code == 0 and report["ok"] is True
    checks = _by_name(report)
    assert list(checks) == ["installation", "database", "configuration", "prefect", "model"]
    assert "WAL" in checks["database"]["detail"] and "offline" in checks["model"]["detail"]


def test_doctor_checks_the_model_endpoint_with_the_key(home: Path) -> None:
    with OpenAIServer(api_key="sk-right-key-000000") as server:
        base_url = server.base_url
        good = _doctor(home, AGENTMESH_MODEL="gpt-4o-mini", OPENAI_API_KEY="sk-right-key-000000",
                       OPENAI_BASE_URL=server.base_url)
        wrong = _doctor(home, AGENTMESH_MODEL="gpt-4o-mini", OPENAI_API_KEY="sk-wrong-key-SECRET-111",
                        OPENAI_BASE_URL=server.base_url)
        unknown = _doctor(home, AGENTMESH_MODEL="no-such-model", OPENAI_API_KEY="sk-right-key-000000",
                          OPENAI_BASE_URL=server.base_url)
    gone = _doctor(home, AGENTMESH_MODEL="gpt-4o-mini", OPENAI_API_KEY="sk-wrong-key-SECRET-111",
                   OPENAI_BASE_URL=base_url)  # the server has stopped

    assert good[0] == 0 and _by_name(good[1])["model"]["ok"]
    for (code, report, text), says, fix in ((wrong, "rejected the API key", "OPENAI_API_KEY"),
                                            (unknown, "does not list model 'no-such-model'", "AGENTMESH_MODEL"),
                                            (gone, "cannot reach", "OPENAI_BASE_URL")):
        model = _by_name(report)["model"]
        assert code == 1 and report["ok"] is False and not model["ok"]
        assert says in model["detail"] and fix in model["fix"]
        assert "SECRET" not in text


def test_doctor_reports_an_unreachable_database_and_prefect_without_secrets(home: Path) -> None:
    code, report, text = _doctor(home, AGENTMESH_DATABASE_URL="postgresql://agent:pw-SECRET-42@127.0.0.1:1/agentmesh",
                                 PREFECT_API_URL="http://127.0.0.1:1/api")
    checks = _by_name(report)
    assert code == 1 and not checks["database"]["ok"] and not checks["prefect"]["ok"]
    assert "AGENTMESH_DATABASE_URL" in checks["database"]["fix"] and "PREFECT_API_URL" in checks["prefect"]["fix"]
    assert "pw-SECRET-42" not in text
    assert checks["installation"]["ok"] and checks["model"]["ok"]


def test_doctor_finds_missing_package_data(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    (empty / "prompts").mkdir(parents=True)
    monkeypatch.setattr("agentmesh.core.bundled.bundled", lambda kind: empty / kind)
    checks = {c.name: c for c in run_checks(Settings(model="offline"))}
    assert not checks["installation"].ok
    assert all(kind in checks["installation"].detail for kind in ("prompts", "tools", "graphs", "evals"))
    assert "reinstall" in (checks["installation"].fix or "")
