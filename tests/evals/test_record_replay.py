"""`agentmesh eval run --record / --replay` end to end, through the `agentmesh` command in a subprocess.

A real ``langchain-openai`` model (``gpt-4o-mini`` by name) talks to a local OpenAI-protocol server that answers
with the offline model's rules over HTTP. The trials are recorded into vcrpy cassettes, the server is stopped, and
the same trials replay from the cassettes alone with the same scores, tool calls and decisions. The scenarios cover
parallel steps (an analyst and an innovator ask at once), a two-turn conversation and parallel tool calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentmesh.testing import OpenAIServer, Reply
from agentmesh.testing.offline_responder import offline_responder

AGENTMESH = Path(sys.executable).with_name("agentmesh")
EVALS = Path(__file__).parents[2] / "evals"
SCENARIOS = [str(EVALS / p) for p in ("ops/checkout-latency.yaml", "ops/checkout-two-turns.yaml",
                                      "support/high-priority-refunds.yaml")]
KEY = "sk-test-record-replay-0123456789"


def agentmesh(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENTMESH_"))}
    # PREFECT_HOME stays the test session's: one local Prefect server for every subprocess.
    environ.update({"AGENTMESH_HOME": str(tmp_path / "home"), "NO_COLOR": "1", "COLUMNS": "120", **env})
    return subprocess.run([str(AGENTMESH), "eval", "run", *args], capture_output=True, text=True, env=environ,
                          cwd=tmp_path, timeout=600)


def as_an_account(request: dict[str, Any]) -> Reply:
    """The offline model's answer, with the account headers a hosted endpoint sends."""
    return replace(offline_responder(request), headers={"openai-organization": "org-SECRET", "set-cookie": "c=SECRET"})


def outcome(report: dict[str, Any]) -> list[Any]:
    """What must not change between the recorded and the replayed eval: per trial, the score, every component,
    each run's steps with their tool calls (arguments and outcomes), decision and token usage. Parallel steps
    finish in either order, so a run's steps are compared as a sorted list."""
    return [(s["id"], s["reward"], s["pass_hat_k"], [
        (t["trial"], t["reward"], t["components"], t["usage"]["input_tokens"], t["usage"]["output_tokens"],
         [(r["status"], r["decision"], sorted(json.dumps(step, sort_keys=True) for step in r["trajectory"]))
          for r in t["runs"]])
        for t in s["trial_results"]]) for s in report["scenarios"]]


@pytest.mark.slow
def test_trials_recorded_against_a_local_server_replay_from_cassettes_alone(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    common = [*SCENARIOS, "--model", "gpt-4o-mini", "--trials", "2", "--cassettes", str(cassettes)]
    with OpenAIServer(responder=as_an_account, api_key=KEY) as server:
        recorded = agentmesh(tmp_path, *common, "--record", "--out", "recorded.json",
                             env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url})
        requests = len(server.requests)
        base_url = server.base_url
    assert recorded.returncode == 0, recorded.stderr
    before = json.loads((tmp_path / "recorded.json").read_text())
    assert before["model"] == "gpt-4o-mini" and before["summary"]["model_calls"] == requests > 0
    assert [s["reward"] for s in before["scenarios"]] == [1.0, 1.0, 1.0]

    files = sorted(p.name for p in cassettes.iterdir())
    assert files == sorted(f"{s}-{i}.yaml" for s in ("ops-checkout-latency", "ops-checkout-two-turns",
                                                     "support-high-priority-refunds") for i in (1, 2))
    interactions = [i for f in files for i in yaml.safe_load((cassettes / f).read_text())["interactions"]]
    assert len(interactions) == requests  # the model's requests only: Prefect's API traffic is not recorded
    assert {i["request"]["uri"].rsplit("/", 2)[-2:] == ["chat", "completions"] for i in interactions} == {True}
    text = "".join((cassettes / f).read_text() for f in files)
    assert KEY not in text and "SECRET" not in text

    # The server is gone: a request the cassettes did not answer would fail to connect.
    replayed = agentmesh(tmp_path, *common, "--replay", "--out", "replayed.json",
                         env={"OPENAI_BASE_URL": base_url})
    assert replayed.returncode == 0, replayed.stderr
    after = json.loads((tmp_path / "replayed.json").read_text())
    assert outcome(after) == outcome(before)
    assert after["summary"]["model_calls"] == requests
    assert not [t["error"] for s in after["scenarios"] for t in s["trial_results"] if t["error"]]

    # Cassettes that do not fit the trials (here: another scenario's) fail the replay instead of scoring 0.
    stale = tmp_path / "stale"
    stale.mkdir()
    shutil.copy(cassettes / "support-high-priority-refunds-1.yaml", stale / "ops-checkout-latency-1.yaml")
    mismatched = agentmesh(tmp_path, SCENARIOS[0], "--model", "gpt-4o-mini", "--cassettes", str(stale), "--replay",
                           env={"OPENAI_BASE_URL": base_url})
    assert mismatched.returncode == 2
    assert "error: --replay: 1 trial did not match its cassette (first: ops-checkout-latency#1" in mismatched.stderr

    # A third trial has no cassette: one line, exit 2, before anything runs.
    missing = agentmesh(tmp_path, *common[:-4], "--trials", "3", "--cassettes", str(cassettes), "--replay",
                        env={})
    lines = [line for line in missing.stderr.splitlines() if line.strip()]
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert len(lines) == 1 and "no cassette" in lines[0] and "ops-checkout-latency-3.yaml" in lines[0], lines
