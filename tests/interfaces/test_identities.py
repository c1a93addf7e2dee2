"""Named identities over the real HTTP server: tokens are people with roles; under ``four_eyes = ["destructive"]``
the identity that started a run cannot approve its destructive call, another identity's approval runs it, and the
run and the audit name both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_harness import Server, running_server

ALICE, BOB, CAROL = "alice-token-0001", "bob-token-0002", "carol-token-0003"
GOAL = 'Call purge_cache as optimizer with {"service": "checkout-api"}'

IDENTITIES = """
[identities.alice]
token = "${ALICE_TOKEN}"
roles = ["submit", "approve"]

[identities.bob]
token = "bob-token-0002"
roles = ["approve"]

[identities.carol]
token = "carol-token-0003"
roles = ["submit"]
"""

TOOL = '''
from agentmesh import ToolContext, tool


@tool(risk="destructive", target="service")
def purge_cache(service: str, ctx: ToolContext) -> dict:
    """Purge a service's cache: every request is slow until it warms up again.

    Args:
        service: The service whose cache goes.
    """
    return {"purged": service, "key": ctx.idempotency_key}
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("identities")
    (root / "tools").mkdir()
    (root / "tools" / "purge.py").write_text(TOOL)
    (root / "identities.toml").write_text(IDENTITIES)
    env = {"AGENTMESH_IDENTITIES_FILE": str(root / "identities.toml"), "ALICE_TOKEN": ALICE,
           "AGENTMESH_TOOLS_PATHS": str(root / "tools")}  # a plain path: no JSON needed
    with running_server(root, token=None, env=env, policy_extra='four_eyes = ["destructive"]') as found:
        yield found


def as_(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def wait_for(client: httpx.Client, run_id: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = client.get(f"/v1/goals/{run_id}").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.2)
    pytest.fail(f"run {run_id} never reached {statuses}: {run['status']}")


def test_each_token_is_a_named_identity_with_roles(server: Server) -> None:
    assert as_(server, ALICE).get("/v1/me").json() == {"name": "alice", "roles": ["approve", "submit"], "auth": True}
    assert as_(server, BOB).get("/v1/me").json()["roles"] == ["approve"]
    assert httpx.get(f"{server.url}/v1/me").status_code == 401
    assert as_(server, "nobody-token-999").get("/v1/runs").status_code == 401
    refused = as_(server, BOB).post("/v1/goals", json={"goal": GOAL, "graph": "tool_call"})
    assert refused.status_code == 403 and "bob may not submit" in refused.json()["error"]["message"]


def test_four_eyes_the_starter_cannot_approve_a_destructive_call_another_identity_can(server: Server) -> None:
    alice, bob, carol = as_(server, ALICE), as_(server, BOB), as_(server, CAROL)
    accepted = alice.post("/v1/goals", json={"goal": GOAL, "graph": "tool_call"})
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["id"]
    paused = wait_for(alice, run_id, "waiting_approval", "done", "failed")
    assert paused["status"] == "waiting_approval", paused
    assert paused["started_by"] == "alice"
    (pending,) = paused["pending_approvals"]
    assert pending["tool"] == "purge_cache"

    own = alice.post(f"/v1/goals/{run_id}/approvals", json={"approved": True})
    assert own.status_code == 403
    assert own.json()["error"]["message"].startswith("four eyes: alice started run")
    # Carol cannot approve at all; Bob cannot pretend to be someone else.
    assert carol.post(f"/v1/goals/{run_id}/approvals", json={"approved": True}).status_code == 403
    assert bob.post(f"/v1/goals/{run_id}/approvals", json={"approved": True, "approver": "dave"}).status_code == 403
    assert wait_for(alice, run_id, "waiting_approval")["pending_approvals"]  # nothing was decided

    approved = bob.post(f"/v1/goals/{run_id}/approvals", json={"approved": True, "reason": "cache is corrupt"})
    assert approved.status_code == 200, approved.text
    done = wait_for(alice, run_id, "done", "failed")
    assert done["status"] == "done", done["error"]
    (call,) = alice.get(f"/v1/runs/{run_id}/audit").json()["data"]
    assert (call["tool"], call["status"], call["approval"], call["approver"]) == ("purge_cache", "ok", "approved", "bob")
    assert call["result"]["purged"] == "checkout-api"
    listed = next(r for r in alice.get("/v1/runs").json()["data"] if r["run_id"] == run_id)
    assert listed["started_by"] == "alice"


def test_a_bad_identities_file_stops_serve_with_one_line(tmp_path: Path) -> None:
    import subprocess

    from serve_harness import AGENTMESH, child_env, make_home

    (tmp_path / "identities.toml").write_text('[identities.alice]\ntoken = "long-enough-token"\nrole = ["submit"]\n')
    done = subprocess.run([*AGENTMESH, "serve", "--port", "0"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=child_env(make_home(tmp_path / "home"),
                                                    AGENTMESH_IDENTITIES_FILE=str(tmp_path / "identities.toml")))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "identities.toml:3: identities.alice.role: unknown key (did you mean 'roles'?)" in done.stderr


def test_an_approver_edits_the_arguments_over_http_and_the_audit_names_them(server: Server) -> None:
    alice, bob = as_(server, ALICE), as_(server, BOB)
    goal = 'Call scale_service as optimizer with {"service": "checkout-api", "replicas": 8}'
    run_id = alice.post("/v1/goals", json={"goal": goal, "graph": "tool_call"}).json()["id"]
    paused = wait_for(alice, run_id, "waiting_approval", "done", "failed")
    assert paused["status"] == "waiting_approval", paused
    (pending,) = paused["pending_approvals"]
    url = f"/v1/goals/{run_id}/approvals"

    # Bad edits: a clear 4xx, one line, and the call keeps waiting.
    unknown = bob.post(url, json={"approved": True, "args": {"replicaz": 5}})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == ("scale_service takes no argument 'replicaz' (did you mean "
                                                  "'replicas'?); its arguments: service, replicas")
    assert bob.post(url, json={"approved": True, "args": [5]}).status_code == 422
    rejecting = bob.post(url, json={"approved": False, "args": {"replicas": 5}})
    assert rejecting.status_code == 400 and "a rejection takes no arguments" in rejecting.json()["error"]["message"]
    assert wait_for(alice, run_id, "waiting_approval")["pending_approvals"][0]["id"] == pending["id"]

    edited = bob.post(url, json={"call_id": pending["id"], "approved": True, "args": {"replicas": 5}})
    assert edited.status_code == 200, edited.text
    done = wait_for(alice, run_id, "done", "failed")
    assert done["status"] == "done", done["error"]
    (call,) = alice.get(f"/v1/runs/{run_id}/audit").json()["data"]
    assert call["args"] == {"service": "checkout-api", "replicas": 8}
    assert call["edited_args"] == {"service": "checkout-api", "replicas": 5}
    assert (call["status"], call["approval"], call["approver"]) == ("ok", "approved", "bob")
    assert (call["result"]["previous_replicas"], call["result"]["replicas"]) == (4, 5)
