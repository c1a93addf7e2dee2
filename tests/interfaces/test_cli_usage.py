"""Every `agentmesh` command, driven the wrong way on purpose through the real console script.

The promise (agentmesh.interfaces.cli): exit 0 done, 1 failed or refused, 2 bad usage or input with one line on
stderr saying what is wrong — never "internal error", never a traceback. `--help` and `--version` exit 0.

The table covers every command the CLI has (a test below walks the Typer app and fails when a command is missing
from it), so a new command comes with its bad invocations.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from agentmesh.interfaces.cli import app

AGENTMESH = Path(sys.executable).with_name("agentmesh")

# (arguments, a piece of the one line that says what is wrong)
BAD: list[tuple[list[str], str]] = [
    (["bogus"], "No such command 'bogus'"),
    (["--bogus"], "--bogus"),
    # run
    (["run"], "Missing argument"),
    (["run", "x", "--bogus"], "No such option: --bogus"),
    (["run", "x", "--dry-run=maybe"], "--dry-run"),
    (["run", "x", "--json=yes"], "--json"),
    (["run", "x", "--graph"], "--graph"),
    (["run", "x", "-m"], "-m"),
    (["run", "   "], "goal is empty"),
    (["run", "x", "--approvals", "sometimes"], "--approvals"),
    (["run", "x", "--graph", "no-such-graph"], "no-such-graph"),
    (["run", "a", "b"], "unexpected extra argument"),
    # approve
    (["approve"], "Missing argument"),
    (["approve", "r1", "c1", "extra"], "unexpected extra argument"),
    (["approve", "r1", "--approvals", "x"], "--approvals"),
    (["approve", "r1", "--reason"], "--reason"),
    # runs
    (["runs", "bogus"], "No such command 'bogus'"),
    (["runs", "list", "--limit", "abc"], "--limit"),
    (["runs", "list", "--limit", "0"], "--limit"),
    (["runs", "list", "--limit", "5000"], "--limit"),
    (["runs", "list", "--status"], "--status"),
    (["runs", "show"], "Missing argument"),
    (["runs", "show", "a", "b"], "unexpected extra argument"),
    (["runs", "show", "nosuchrun"], "nosuchrun"),
    (["runs", "audit"], "Missing argument"),
    (["runs", "audit", "nosuchrun"], "nosuchrun"),
    (["runs", "resume"], "Missing argument"),
    (["runs", "resume", "nosuchrun", "--approvals", "x"], "--approvals"),
    (["runs", "feedback", "r1", "--note", "x"], "--score"),
    (["runs", "feedback", "r1", "--score", "x", "--note", "x"], "--score"),
    (["runs", "feedback", "r1", "--score", "9", "--note", "x"], "--score"),
    # tools, agents, graphs, config, doctor
    (["tools", "extra"], "unexpected extra argument"),
    (["tools", "--bogus"], "--bogus"),
    (["agents", "--bogus"], "--bogus"),
    (["graphs", "extra"], "No such command 'extra'"),
    (["graphs", "show"], "Missing argument"),
    (["graphs", "show", "nosuch"], "nosuch"),
    (["config", "--bogus"], "--bogus"),
    (["config", "extra"], "unexpected extra argument"),
    (["doctor", "extra"], "unexpected extra argument"),
    # world, policy
    (["world", "bogus"], "No such command 'bogus'"),
    (["world", "init", "--sample"], "--sample"),
    (["world", "init", "--sample", "nosuch"], "nosuch"),
    (["world", "show", "extra"], "unexpected extra argument"),
    (["world", "reset", "--force"], "--force"),
    (["policy", "bogus"], "No such command 'bogus'"),
    (["policy", "show", "--bogus"], "--bogus"),
    # deploy, prefect
    (["deploy"], "name a deployment"),
    (["deploy", "run"], "one deployment name"),
    (["deploy", "x", "--goal", "g", "--cron", "not a cron"], "five fields"),
    (["deploy", "x", "--goal", "g", "--interval", "-5"], "--interval"),
    (["deploy", "x", "--goal", "g", "--interval", "soon"], "--interval"),
    (["deploy", "x", "--goal", "g", "--cron", "* * * * *", "--interval", "60"], "not both"),
    (["deploy", "--serve", "--limit", "0"], "--limit"),
    (["prefect", "bogus"], "No such command 'bogus'"),
    (["prefect", "status", "extra"], "unexpected extra argument"),
    (["prefect", "stop", "--bogus"], "--bogus"),
    (["prefect", "automations", "extra"], "unexpected extra argument"),
    # serve, mcp, worker
    (["serve", "--port", "99999"], "--port"),
    (["serve", "--port", "http"], "--port"),
    (["serve", "--log-level", "loud"], "--log-level"),
    (["serve", "--host", "0.0.0.0"], "token"),
    (["mcp", "bogus"], "No such command 'bogus'"),
    (["mcp", "serve", "--port", "-1"], "--port"),
    (["mcp", "serve", "--approvals", "maybe"], "--approvals"),
    (["worker"], "--goals"),
    (["worker", "--goals", "--limit", "0"], "--limit"),
    (["serve", "--processes", "-1"], "--processes"),
    (["serve", "--processes", "2", "--limit", "0"], "--limit"),
    (["worker", "--role", "nobody"], "nobody"),
    (["worker", "--role", "optimizer", "--limit", "0"], "--limit"),
    # chat
    (["chat", "extra"], "unexpected extra argument"),
    (["chat", "--graph", "nosuch"], "nosuch"),
    # eval
    (["eval", "bogus"], "No such command 'bogus'"),
    (["eval", "run"], "Missing argument"),
    (["eval", "run", "ops", "--trials", "0"], "--trials"),
    (["eval", "run", "ops", "--concurrency", "0"], "--concurrency"),
    (["eval", "run", "ops", "--fail-under", "abc"], "--fail-under"),
    (["eval", "run", "ops", "--record", "--replay"], "--record"),
    (["eval", "run", "/nonexistent/suite"], "/nonexistent/suite"),
    (["eval", "run", "ops", "--tags", "nosuchtag"], "nosuchtag"),
    (["eval", "compare", "a.json"], "Missing argument"),
    (["eval", "compare", "/nope1.json", "/nope2.json"], "/nope1.json"),
    (["eval", "validate"], "Missing argument"),
    (["eval", "validate", "/nonexistent/suite"], "/nonexistent/suite"),
    # evolve, prompts
    (["evolve"], "--suite"),
    (["evolve", "--suite", "ops", "--rounds", "0"], "--rounds"),
    (["evolve", "--suite", "/nonexistent/suite"], "/nonexistent/suite"),
    (["prompts"], "Missing argument"),
    (["prompts", "bogus"], "bogus"),
    (["prompts", "show"], "ROLE"),
    (["prompts", "show", "optimizer", "vX"], "vX"),
    (["prompts", "diff", "optimizer", "1", "2", "3", "4"], "unexpected extra argument"),
]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENTMESH_"))}
    environ.update({"AGENTMESH_HOME": str(tmp_path / "home"), "NO_COLOR": "1", "COLUMNS": "80"})
    return subprocess.run([str(AGENTMESH), *args], capture_output=True, text=True, env=environ, cwd=tmp_path,
                          timeout=600, stdin=subprocess.DEVNULL)


def _commands(group: typer.Typer) -> set[tuple[str, ...]]:
    """Every command path of the CLI, e.g. ("runs", "show")."""
    root = typer.main.get_command(group)
    found: set[tuple[str, ...]] = set()

    def walk(command: object, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None)
        if children is None:
            found.add(path)
            return
        if path and getattr(command, "invoke_without_command", False):
            found.add(path)  # a group that is also a command (`agentmesh graphs`)
        for name, child in children.items():
            walk(child, (*path, name))

    walk(root, ())
    return found


def test_the_table_covers_every_command_with_at_least_40_invocations() -> None:
    assert len(BAD) >= 40
    commands = _commands(app)
    covered = {tuple(a for a in args[:2] if not a.startswith("-")) for args, _ in BAD}
    missing = [" ".join(c) for c in sorted(commands)
               if not any(c == cov[: len(c)] for cov in covered)]
    assert not missing, f"no bad invocation for: {', '.join(missing)}"


@pytest.mark.parametrize(("args", "needle"), BAD, ids=[" ".join(a) or "(none)" for a, _ in BAD])
def test_a_bad_invocation_is_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    done = _cli(tmp_path, *args)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert needle.lower() in lines[0].lower(), lines[0]
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_help_and_version_exit_0(tmp_path: Path) -> None:
    version = _cli(tmp_path, "--version")
    assert version.returncode == 0, version.stderr
    from agentmesh import __version__

    assert version.stdout.strip() == f"agentmesh {__version__}"
    for args in (["--help"], ["runs", "show", "--help"], ["eval", "run", "--help"]):
        done = _cli(tmp_path, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert "Usage: agentmesh" in done.stdout and done.stderr == ""
    bare = _cli(tmp_path)  # no command: the help, which is an answer rather than a mistake
    assert bare.returncode == 0 and "Usage: agentmesh" in bare.stdout and bare.stderr == ""


def test_every_command_has_help_exiting_0(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """In-process for speed (the subprocess path is checked above): each command's --help through main()."""
    from agentmesh.interfaces.cli import main

    commands = sorted(_commands(app))
    assert len(commands) >= 25
    for path in commands:
        monkeypatch.setattr(sys, "argv", ["agentmesh", *path, "--help"])
        code: object = 0
        try:
            main()  # returns, or exits with the code
        except SystemExit as exited:
            code = exited.code
        captured = capsys.readouterr()
        assert code in (0, None), (path, captured.err)
        shown = " ".join(captured.out.split())
        assert "Usage:" in shown and "agentmesh " + " ".join(path) + " [OPTIONS]" in shown, path
