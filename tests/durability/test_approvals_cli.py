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


def test_approve_with_edited_arguments_from_another_process(home: Path) -> None:
    """`agentmesh approve RUN CALL --args '{"replicas": 5}'`: the agent asked for 8, the world ends at 5, and the
    audit shows both and who edited them. Bad --args are one line and exit 2, and the call keeps waiting."""
    env = cli_env(home)
    assert run_cli("world", "init", env=env).returncode == 0
    policy = DEFAULT_POLICY_FILE.read_text().replace("approval_required = []", 'approval_required = ["scale_service"]')
    (home / "policy.toml").write_text(policy)
    goal = 'Call scale_service as optimizer with {"service": "checkout-api", "replicas": 8}'
    first = run_cli("run", "--graph", "tool_call", "--json", goal, env=env)
    assert first.returncode == 0, first.stderr
    paused = loads(first.stdout)
    (pending,) = paused["pending_approvals"]
    run_id = paused["run_id"]

    for bad, words in [("nope", "--args is not JSON"), ("[5]", "must be a JSON object"),
                       ('{"replicaz": 5}', "takes no argument 'replicaz' (did you mean 'replicas'?)")]:
        refused = run_cli("approve", run_id, pending["id"], "--args", bad, "--as", "alice", env=env)
        assert refused.returncode == 2, (bad, refused.stderr)
        assert words in refused.stderr and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert query(home, "SELECT approval FROM tool_calls WHERE tool_call_id = :c", c=pending["id"])[0][0] == "pending"

    edited = run_cli("approve", run_id, pending["id"], "--args", '{"replicas": 5}', "--as", "alice", "--json", env=env)
    assert edited.returncode == 0, edited.stderr
    assert "edited by alice" in edited.stderr
    assert loads(edited.stdout)["status"] == "done"
    assert query(home, "SELECT replicas FROM world_services WHERE name = 'checkout-api'")[0][0] == 5
    (call,) = loads(run_cli("runs", "audit", run_id, "--json", env=env).stdout)
    assert (call["args"]["replicas"], call["edited_args"]["replicas"], call["approver"], call["status"]) == (
        8, 5, "alice", "ok")
