"""`agentmesh chat` driven through a pseudo-terminal: goal → decision with an inline approval, follow-ups
in the same thread, Ctrl-C during a run, commands, history, /exit — and never a traceback. `agentmesh run`
interrupted by Ctrl-C the same way: one line, exit 130."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from serve_harness import AGENTMESH, child_env, make_home

from agentmesh.testing import OpenAIServer, error, slow

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.slow

PROMPT = "agentmesh> "


def spawn(home: Path, cwd: Path, **env: str) -> Any:
    # TERM=dumb: Rich prints no colour codes, so the expected text is the text on screen.
    child = pexpect.spawn(AGENTMESH[0], AGENTMESH[1:] + ["chat"], cwd=str(cwd), env=child_env(home, TERM="dumb", **env),
                          encoding="utf-8", timeout=120, dimensions=(50, 160),
                          use_poll=True)  # select() fails on descriptors above 1023, which a long test worker reaches
    child.expect_exact("agentmesh chat")
    child.expect_exact(PROMPT)
    return child


def finish(child: Any) -> str:
    child.sendline("/exit")
    child.expect_exact("bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    return child.before or ""


def test_an_inline_approval_with_edited_arguments(tmp_path: Path) -> None:
    """`e` at the approval question: the arguments to change, checked (a bad edit is said and asked again), the
    call approved with them; the resumed run shows the edit."""
    home = make_home(tmp_path / "home")
    child = spawn(home, tmp_path)
    child.sendline("/graph tool_call")
    child.expect_exact(PROMPT)
    child.sendline('Call scale_service as optimizer with {"service": "checkout-api", "replicas": 8}')
    child.expect(r"approve scale_service \{.*\} \(agent optimizer\)\? \[y/n/e\] ")
    child.sendline("e")
    child.expect_exact("arguments to change, as JSON")
    child.sendline('{"replicaz": 5}')
    child.expect_exact("takes no argument 'replicaz'")
    child.expect_exact("nothing was recorded")
    child.expect(r"\[y/n/e\] ")
    child.sendline("e")
    child.expect_exact("arguments to change, as JSON")
    child.sendline('{"replicas": 5}')
    child.expect_exact("approved with your edit scale_service")
    child.expect_exact('edited by')
    child.expect_exact('"replicas": 5}: ok')
    child.expect(r"done · run ([0-9a-f-]{36})")
    run_id = child.match.group(1)
    child.expect_exact(PROMPT)
    assert "Traceback" not in (child.before or "")
    child.sendline(f"/audit {run_id[:8]}")
    child.expect_exact("(edited)")
    child.expect_exact(PROMPT)
    finish(child)


def test_goal_approval_decision_follow_up_and_commands(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    child = spawn(home, tmp_path)
    transcript = []

    child.sendline("checkout-api p95 is at 900 ms, keep it under 300 ms without doubling cost")
    child.expect_exact("plan")
    child.expect_exact("optimizer → scale_service")
    child.expect_exact("approval needed for scale_service")
    child.expect(r"approve scale_service \{.*\} \(agent optimizer\)\? \[y/n/e\] ")
    child.sendline("maybe")
    child.expect_exact("answer y (approve), n (reject) or e (approve with arguments you change)")
    child.sendline("y")
    child.expect_exact("approved scale_service")
    child.expect_exact("resuming")
    child.expect_exact("Actions taken")
    child.expect(r"done · run ([0-9a-f-]{36})")
    first_run = child.match.group(1)
    child.expect_exact(PROMPT)
    transcript.append(child.before)

    child.sendline("What is the p95 latency of payments-api right now?")  # a follow-up in the same thread
    child.expect(r"done · run ([0-9a-f-]{36})")
    assert child.match.group(1) != first_run
    child.expect_exact(PROMPT)

    child.sendline("/runs")
    child.expect_exact(first_run[:8])
    child.expect_exact(PROMPT)
    child.sendline(f"/show {first_run[:8]}")
    child.expect_exact("optimizer (optimizer) done")
    child.expect_exact(PROMPT)
    child.sendline("/approve")
    child.expect_exact("has nothing waiting for approval")
    child.expect_exact(PROMPT)
    child.sendline("/graph nope")
    child.expect_exact("error: no graph 'nope'")
    child.expect_exact(PROMPT)
    child.sendline("/model gpt-4o")
    child.expect_exact("error:")
    child.expect_exact(PROMPT)
    child.sendline("/bogus")
    child.expect_exact("unknown command /bogus")
    child.expect_exact(PROMPT)
    child.sendline("/help")
    child.expect_exact("/approve [ID]")
    child.expect_exact(PROMPT)
    child.sendline("/new")
    child.expect_exact("new thread")
    child.expect_exact(PROMPT)
    transcript.append(finish(child))
    assert "Traceback" not in "".join(transcript)
    history = (home / "chat_history").read_text()
    assert "checkout-api p95 is at 900 ms" in history and "/runs" in history


def test_follow_ups_carry_the_thread_and_ctrl_c_cancels_a_run_but_keeps_the_session(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")

    def responder(body: dict[str, Any]) -> Any:
        text = json.dumps(body["messages"])
        if "hold-on-please" in text:
            return slow(60, "too late")  # the run is interrupted long before this answers
        return error(400, body={"error": {"message": "scripted refusal", "type": "invalid_request_error"}})

    with OpenAIServer(responder=responder) as model:
        child = spawn(home, tmp_path, OPENAI_API_KEY="test", OPENAI_BASE_URL=model.base_url)

        child.sendline("first goal: payments-api looks slow")
        child.expect(r"failed · run [0-9a-f-]{36}")
        child.expect_exact(PROMPT)
        child.sendline("second goal: check it again")
        child.expect(r"failed · run [0-9a-f-]{36}")
        child.expect_exact(PROMPT)
        follow_up = json.dumps(model.requests[-1]["messages"])
        assert "second goal: check it again" in follow_up
        assert "first goal: payments-api looks slow" in follow_up, "the follow-up's planner saw the thread"

        child.sendline("/new")
        child.expect_exact(PROMPT)
        child.sendline("hold-on-please: scale checkout-api")
        child.expect_exact("plan (strategist)")
        while not any("hold-on-please" in json.dumps(r["messages"]) for r in model.requests):
            child.expect(pexpect.TIMEOUT, timeout=0.05)  # the model request is in flight: now interrupt it
        child.sendintr()
        child.expect(r"cancelled run ([0-9a-f-]{36})")
        cancelled = child.match.group(1)
        noise = child.before
        child.expect_exact("recorded as cancelled")
        child.expect_exact(PROMPT)
        assert noise.strip() == "^C", f"one line for a cancelled run, nothing else: {noise!r}"
        assert "Crash" not in child.before and "ERROR" not in child.before
        assert "first goal" not in json.dumps(model.requests[-1]["messages"]), "/new forgot the thread"

        child.sendline("/runs")
        child.expect_exact(cancelled[:8])
        child.expect_exact(PROMPT)
        output = finish(child)
    assert "Traceback" not in output

    from agentmesh.core.settings import Settings
    from agentmesh.persistence import runs as store
    from agentmesh.persistence.database import get_engine

    record = store.get_run(get_engine(Settings(home=home).resolved_database_url), cancelled)
    assert record["status"] == "cancelled"


@pytest.mark.parametrize("leave", ["quit", "Exit!", "bye"])
def test_help_clear_and_leaving_work_with_or_without_the_slash(tmp_path: Path, leave: str) -> None:
    """A line that is only `help`, `clear`, `quit`, `exit` or `bye` is the command, never a goal."""
    home = make_home(tmp_path / "home")
    child = spawn(home, tmp_path)
    child.sendline("help")
    child.expect_exact("/approve [ID]")
    child.expect_exact(PROMPT)
    child.sendline("clear")
    child.expect_exact("new thread")
    child.expect_exact(PROMPT)
    child.sendline(leave)
    child.expect_exact("bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "plan" not in (child.before or ""), "a command word ran as a goal"

    from agentmesh.core.settings import Settings
    from agentmesh.persistence.database import get_engine
    from agentmesh.persistence.runs import runs_listing

    assert runs_listing(get_engine(Settings(home=home).resolved_database_url), limit=5) == []


@pytest.mark.parametrize("key", ["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_ctrl_d_at_the_prompt_leaves_cleanly(tmp_path: Path, key: str) -> None:
    child = spawn(make_home(tmp_path / "home"), tmp_path)
    child.sendintr() if key == "ctrl-c" else child.sendeof()
    child.expect_exact("bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "Traceback" not in (child.before or "")


def hold_the_first_request(model: Any, child: Any) -> None:
    """Wait until the run's first model request is in flight (its reply is 60 s away)."""
    while not model.requests:
        child.expect(pexpect.TIMEOUT, timeout=0.05)


def test_ctrl_c_cancels_agentmesh_run_in_one_line_with_exit_130(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    with OpenAIServer(responder=lambda body: slow(60, "too late")) as model:
        child = pexpect.spawn(AGENTMESH[0], AGENTMESH[1:] + ["run", "scale checkout-api to 4 replicas"],
                              cwd=str(tmp_path), encoding="utf-8", timeout=120, dimensions=(50, 200), use_poll=True,
                              env=child_env(home, TERM="dumb", OPENAI_API_KEY="test", OPENAI_BASE_URL=model.base_url))
        child.expect(r"agentmesh run ([0-9a-f-]{36})")
        run_id = child.match.group(1)
        child.expect_exact("plan (strategist)")
        hold_the_first_request(model, child)
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
    after = [line.removeprefix("^C") for line in (child.before or "").splitlines() if line.strip() not in ("", "^C")]
    assert len(after) == 1, after
    assert f"cancelled run {run_id}, recorded as cancelled" in after[0]
    assert f"agentmesh runs show {run_id}" in after[0]
    assert child.exitstatus == 130

    from agentmesh.core.settings import Settings
    from agentmesh.persistence import runs as store
    from agentmesh.persistence.database import get_engine

    record = store.get_run(get_engine(Settings(home=home).resolved_database_url), run_id)
    assert record["status"] == "cancelled"

    # In Prefect too the run is Cancelled (by the user), not Crashed.
    import subprocess

    import httpx

    status = subprocess.run([*AGENTMESH, "prefect", "status", "--json"], env=child_env(home), capture_output=True,
                            text=True, timeout=60)
    api = json.loads(status.stdout)["api_url"]
    flow_run = httpx.get(f"{api}/flow_runs/{record['flow_run_id']}", timeout=30).json()
    assert (flow_run["state_type"], flow_run["state"]["message"]) == ("CANCELLED", "cancelled by the user")
