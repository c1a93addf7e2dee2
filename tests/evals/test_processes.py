"""`eval run --processes N`: trials run in N worker processes (Prefect's ProcessPoolTaskRunner) and score as the
committed baseline does; each trial's runs were owned by a worker process, never the CLI's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from agentmesh.core.bundled import bundled


def test_trials_in_worker_processes_score_as_the_baseline(tmp_path: Path) -> None:
    env = dict(os.environ, AGENTMESH_HOME=str(tmp_path / "home"), AGENTMESH_MODEL="offline")
    out, work = tmp_path / "report.json", tmp_path / "work"
    cli = subprocess.Popen([sys.executable, "-m", "agentmesh", "eval", "run", "ops", "--processes", "2", "--out",
                            str(out), "--workdir", str(work)], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    stdout, stderr = cli.communicate(timeout=600)
    assert cli.returncode == 0, stderr[-3000:]
    assert "2 processes" in stderr

    report = json.loads(out.read_text())
    baseline = {s["id"]: s["reward"] for s in json.loads((bundled("evals") / "baseline.json").read_text())["scenarios"]}
    rewards = {s["id"]: s["reward"] for s in report["scenarios"]}
    assert rewards and rewards == {k: baseline[k] for k in rewards}

    owners = set()
    for db in (work / "trials").glob("*/agentmesh.db"):
        engine = sa.create_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            owners |= {int(owner.split(":")[1]) for (owner,) in conn.execute(sa.text("SELECT owner FROM runs"))}
        engine.dispose()
    assert len(owners) == 2 and cli.pid not in owners, owners  # two worker processes ran every trial
