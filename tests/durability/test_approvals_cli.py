"""Approvals from another process: one call approved and one rejected with `agentmesh approve`, each from a
separate process; the run pauses, resumes, and its decision reflects both verdicts."""

from __future__ import annotations

from pathlib import Path

from durability_helpers import cli_env, loads, query, run_cli

from agentmesh.gateway.policy import DEFAULT_POLICY_FILE

GOAL = "Go through the urgent open support tickets and sort them out: refunds where fair, escalate the rest"


def test_one_approval_granted_and_one_rejected_from_other_processes(home: Path) -> None:
    env = cli_env(home)
    assert run_cli("world", "init", env=env).returncode == 0
    policy = DEFAULT_POLICY_FILE.read_text().replace("approval_required = []",
                                                     'approval_required = ["resolve_ticket", "escalate_ticket"]')
    (home / "policy.toml").write_text(policy)

    first = run_cli("run", "--json", GOAL, env=env)
    assert first.returncode == 0, first.stderr
    paused = loads(first.stdout)
    assert paused["status"] == "waiting_approval"
    # Parallel steps may each pause on a call; every one of them waits, and nothing has changed yet.
    pending, *others = paused["pending_approvals"]
    for waiting in (pending, *others):
        assert query(home, "SELECT status FROM world_tickets WHERE id = :t", t=waiting["args"]["ticket_id"])[0][0] == "open"
    assert query(home, "SELECT status FROM world_tickets WHERE id = :t", t=pending["args"]["ticket_id"])[0][0] == "open"

    granted = run_cli("approve", paused["run_id"], pending["id"], "--as", "alice", "--reason", "fair", "--json", env=env)
    assert granted.returncode == 0, granted.stderr
    after_first = loads(granted.stdout)
    # The approved call ran once; the next call that needs approval paused the run again.
    ok = [c for s in after_first["steps"] for c in s["tool_calls"] if c["id"] == pending["id"]]
    assert ok and ok[-1]["status"] == "ok"
    assert after_first["status"] == "waiting_approval"
    second = after_first["pending_approvals"][0]
    assert second["id"] != pending["id"]

    rejected = run_cli("approve", paused["run_id"], second["id"], "--reject", "--as", "bob", "--reason",
                       "needs a manager", "--json", env=env)
    assert rejected.returncode in (0, 1), rejected.stderr
    final = loads(rejected.stdout)
    assert final["status"] in ("done", "waiting_approval")

    audit = {c["tool_call_id"]: c for c in loads(run_cli("runs", "audit", paused["run_id"], "--json", env=env).stdout)}
    assert audit[pending["id"]]["status"] == "ok"
    assert (audit[pending["id"]]["approver"], audit[pending["id"]]["approval_reason"]) == ("alice", "fair")
    assert audit[second["id"]]["status"] == "rejected"
    assert (audit[second["id"]]["approver"], audit[second["id"]]["approval_reason"]) == ("bob", "needs a manager")
    # The world saw the approved change and not the rejected one.
    approved_ticket = pending["args"]["ticket_id"]
    rejected_ticket = second["args"]["ticket_id"]
    assert query(home, "SELECT status FROM world_tickets WHERE id = :t", t=approved_ticket)[0][0] != "open"
    if rejected_ticket != approved_ticket:
        assert query(home, "SELECT status FROM world_tickets WHERE id = :t", t=rejected_ticket)[0][0] == "open"
    if final["status"] == "done":
        actions = {(a["tool"], a["args"]["ticket_id"]) for a in final["decision"]["actions"]}
        assert (pending["tool"], approved_ticket) in actions
        assert (second["tool"], rejected_ticket) not in actions
