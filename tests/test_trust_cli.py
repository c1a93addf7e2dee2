"""A policy or settings file that would weaken agentmesh in silence stops every command that uses it, and four eyes
at the CLI: through real `agentmesh` subprocesses (helpers from test_cli)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_cli import Cli, _cli

from agentmesh.core.bundled import DEFAULT_POLICY_FILE


def policy(home: Path, edit: str, old: str = "approval_required = []") -> Path:
    """The default policy with ``old`` replaced by ``edit``."""
    home.mkdir(parents=True, exist_ok=True)
    text = DEFAULT_POLICY_FILE.read_text()
    assert old in text
    path = home / "policy.toml"
    path.write_text(text.replace(old, edit, 1))
    return path


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return _cli(tmp_path / "home", tmp_path)


def test_a_misspelt_tool_in_approval_required_stops_run_policy_show_serve_and_doctor(cli: Cli, tmp_path: Path) -> None:
    path = policy(tmp_path / "home", 'approval_required = ["scale_servce"]')
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "scale_servce" in text)
    expected = (f"policy file {path}:{line}: approval_required: unknown tool 'scale_servce' "
                "(did you mean 'scale_service'?)")
    for args in (["run", "scale checkout-api to 6 replicas"], ["policy", "show"], ["serve", "--port", "0"], ["tools"]):
        done = cli(*args)
        assert done.code == 2, (args, done.stderr)
        assert done.error_line() == f"error: {expected}", args
    doctor = cli("doctor", "--json")
    assert doctor.code == 1
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["configuration"]["ok"] is False and checks["configuration"]["detail"] == expected


@pytest.mark.parametrize(("edit", "message"), [
    ("optimiser = [", r"roles.optimiser: unknown role 'optimiser' \(did you mean 'optimizer'\?\)"),
    ('approval_required = []\nfour_eyes = ["destructve"]', r"four_eyes: unknown tool or risk 'destructve' \(did you mean 'destructive'\?\)"),
    ('approval_required = []\napproval_timeout_s = "soon"', r"approval_timeout_s: Input should be a valid number"),
    ('approval_required = []\naproval_default = "approve"', r"aproval_default: unknown key \(did you mean 'approval_default'\?\)"),
])
def test_unknown_roles_risks_keys_and_wrong_types_name_their_line(cli: Cli, tmp_path: Path, edit: str,
                                                                  message: str) -> None:
    old = "optimizer = [" if edit.startswith("optimiser") else "approval_required = []"
    policy(tmp_path / "home", edit, old)
    done = cli("policy", "show")
    assert done.code == 2
    assert re.search(r"policy.toml:\d+: " + message, done.error_line()), done.error_line()


def test_agentmesh_toml_is_checked_and_list_settings_take_a_plain_path(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "agentmesh.toml").write_text('model = "offline"\nmax_tool_round = 3\n')
    done = cli("config")
    assert done.code == 2
    assert done.error_line() == ("error: settings file agentmesh.toml:2: max_tool_round: unknown setting "
                                 "(did you mean 'max_tool_rounds'?)")
    doctor = cli("doctor", "--json")
    assert doctor.code == 1 and "max_tool_round" in json.loads(doctor.stdout)["checks"][0]["detail"]
    (tmp_path / "agentmesh.toml").unlink()
    tools = tmp_path / "mine"
    tools.mkdir()
    (tools / "t.py").write_text('from agentmesh import tool\n\n@tool\ndef ping() -> str:\n    """Ping."""\n'
                                '    return "pong"\n')
    listed = cli("tools", "--json", env={"AGENTMESH_TOOLS_PATHS": str(tools)})
    assert listed.code == 0, listed.stderr
    assert "ping" in {t["name"] for t in json.loads(listed.stdout)}
    bad = cli("config", env={"AGENTMESH_PRICES": "{not json"})
    assert bad.code == 2 and bad.error_line().startswith("error: AGENTMESH_PRICES: not valid JSON")


def test_four_eyes_at_the_cli_the_starter_is_refused_another_approver_runs_the_call(cli: Cli, tmp_path: Path) -> None:
    policy(tmp_path / "home", 'approval_required = ["restart_service"]\nfour_eyes = ["restart_service"]')
    goal = 'Call restart_service as optimizer with {"service": "auth-api"}'
    paused = cli("run", "--json", "--graph", "tool_call", "--as", "alice", goal)
    assert paused.code == 0, paused.stderr
    run = json.loads(paused.stdout)
    assert (run["status"], run["started_by"]) == ("waiting_approval", "alice")

    own = cli("approve", run["run_id"], "--as", "alice")
    assert own.code == 1
    assert own.error_line() == (f"refused: four eyes: alice started run {run['run_id'][:8]} and cannot approve its "
                                "own restart_service; another approver must")
    rejected_by_own = cli("runs", "show", "--json", run["run_id"])
    assert json.loads(rejected_by_own.stdout)["status"] == "waiting_approval"

    other = cli("approve", "--json", run["run_id"], "--as", "bob")
    assert other.code == 0, other.stderr
    assert json.loads(other.stdout)["status"] == "done"
    (call,) = json.loads(cli("runs", "audit", "--json", run["run_id"]).stdout)
    assert (call["status"], call["approval"], call["approver"]) == ("ok", "approved", "bob")
    shown = cli("runs", "show", run["run_id"])
    assert "started by alice" in shown.stdout and "scope: service auth-api" in shown.stdout
