"""Every graph `agentmesh graphs` lists runs its example goal to a decision in a fresh home — with the command
line the listing prints, copied as a newcomer copies it, through the real console script and the offline model.

A fresh AGENTMESH_HOME per graph (no world, no policy, no prompt versions yet); Prefect's home is the test
session's, so the homes share one local Prefect server instead of starting one each.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from agentmesh.runtime.graphs import list_graphs

pytestmark = pytest.mark.slow

AGENTMESH = [sys.executable, "-m", "agentmesh"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTMESH_", "OPENAI_"))}
    env.update(AGENTMESH_HOME=str(home), COLUMNS="80", TERM="dumb")
    return env


def _example_command(name: str, home: Path) -> list[str]:
    """The example line `agentmesh graphs` prints for ``name``, split as a shell splits it."""
    listed = subprocess.run([*AGENTMESH, "graphs"], env=_env(home), capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    prefix = f"e.g. agentmesh run --graph {name} "
    lines = [line.strip() for line in listed.stdout.splitlines() if line.strip().startswith(prefix)]
    assert len(lines) == 1, f"no one-line example for {name} in:\n{listed.stdout}"
    argv = shlex.split(lines[0].removeprefix("e.g. "))
    assert argv[:4] == ["agentmesh", "run", "--graph", name] and len(argv) == 5, argv
    return argv


@pytest.mark.parametrize("name", list(list_graphs()))
def test_every_listed_graph_runs_its_example_goal_to_a_decision_in_a_fresh_home(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    argv = _example_command(name, home)
    assert not home.exists() or not (home / "agentmesh.db").exists(), "listing the graphs made no runs"
    done = subprocess.run([*AGENTMESH, *argv[1:], "--json"], env=_env(home), cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert done.returncode == 0, f"{' '.join(map(shlex.quote, argv))} → exit {done.returncode}:\n{done.stderr}"
    result = json.loads(done.stdout)
    assert result["status"] == "done", result.get("error")
    decision = result["decision"]
    assert decision["summary"].strip() and decision["outcome"] in (
        "achieved", "partially_achieved", "not_achieved", "no_action_needed", "escalated"), decision

    shown = subprocess.run([*AGENTMESH, "runs", "show", result["run_id"]], env=_env(home), cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and decision["summary"].split()[0] in shown.stdout, shown.stdout + shown.stderr
