"""The HTTP API against a real `agentmesh serve` process: goals to decisions over Server-Sent Events,
resumed streams, approvals, cancellation, auth, size limits and clear 4xx errors."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from serve_harness import AGENTMESH, Server, child_env, free_port, iter_sse, make_home, read_events

pytestmark = pytest.mark.slow

SCALE_GOAL = "checkout-api p95 is at 900 ms, keep it under 300 ms without doubling cost"


def submit(client: httpx.Client, goal: str, **body: object) -> str:
    response = client.post("/v1/goals", json={"goal": goal, **body})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] in ("queued", "running")
    assert accepted["links"]["events"] == f"/v1/goals/{accepted['id']}/events"
    return str(accepted["id"])


def test_goal_runs_to_a_decision_streamed_as_events_and_resumes_after_last_event_id(server: Server) -> None:
    with server.client() as client:
        run_id = submit(client, SCALE_GOAL, approvals="auto")
        events = read_events(client, run_id)

        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(events) + 1)), "every event once, in order, from the first"
        assert all(e["_id"] == str(e["seq"]) for e in events), "the SSE id is the sequence number"
        assert all(e["run_id"] == run_id for e in events), "the goal id is the run id"
        types = [e["type"] for e in events]
        assert types[0] == "run_started" and types[-1] == "run_finished"
        assert events[-1]["status"] == "done"
        assert {"plan", "step_started", "tool_call", "tool_result", "finding"} <= set(types)
        scaled = [e for e in events if e["type"] == "tool_call" and e["tool"] == "scale_service"]
        assert scaled, "the optimizer acted (auto-approved within policy)"

        result = client.get(f"/v1/goals/{run_id}").json()
        assert result["goal"] == SCALE_GOAL and result["graph"] == "mesh" and result["steps"]
        assert result["id"] == run_id and result["status"] == "done"
        assert result["decision"]["summary"]
        assert [a["tool"] for a in result["decision"]["actions"]] == ["scale_service"]

        # A client that lost the stream after event k gets exactly the rest.
        k = len(events) // 2
        rest = read_events(client, run_id, last_event_id=k)
        assert [e["seq"] for e in rest] == seqs[k:]
        assert [e["type"] for e in rest] == types[k:]

        listed = client.get("/v1/runs", params={"limit": 5}).json()["data"]
        assert run_id in [r["run_id"] for r in listed]
        audit = client.get(f"/v1/runs/{run_id}/audit").json()["data"]
        assert any(c["tool"] == "scale_service" and c["status"] == "ok" for c in audit)


def test_a_call_waiting_for_approval_is_approved_and_the_same_stream_follows_the_resumed_run(server: Server) -> None:
    goal = "inventory-svc p95 is 400 ms, bring it under 200 ms"
    with server.client() as client, server.client() as approver:
        run_id = submit(client, goal)
        seen: list[dict] = []
        with client.stream("GET", f"/v1/goals/{run_id}/events", timeout=120) as response:
            for event in iter_sse(response):
                seen.append(event)
                if event["type"] == "run_finished" and event["status"] == "waiting_approval":
                    paused = approver.get(f"/v1/goals/{run_id}").json()
                    assert paused["status"] == "waiting_approval"
                    (call,) = paused["pending_approvals"]
                    assert call["tool"] == "scale_service"
                    answer = approver.post(f"/v1/goals/{run_id}/approvals",
                                           json={"call_id": call["id"], "approved": True, "reason": "load test"})
                    assert answer.status_code == 200, answer.text
        types = [e["type"] for e in seen]
        assert "approval_requested" in types
        pause = types.index("run_finished")
        assert seen[pause]["status"] == "waiting_approval"
        assert "run_started" in types[pause:], "the stream stayed open through the pause and followed the resume"
        assert seen[-1]["type"] == "run_finished" and seen[-1]["status"] == "done"

        result = client.get(f"/v1/goals/{run_id}").json()
        assert result["status"] == "done"
        assert [a["tool"] for a in result["decision"]["actions"]] == ["scale_service"]
        audit = client.get(f"/v1/runs/{run_id}/audit").json()["data"]
        (scale,) = [c for c in audit if c["tool"] == "scale_service"]
        # The server's one API token is the identity `api`: the audit names who approved.
        assert (scale["status"], scale["approval"], scale["approver"], scale["approval_reason"]) == (
            "ok", "approved", "api", "load test")
        # Nothing is left to approve: a second verdict is a clear 400.
        again = client.post(f"/v1/goals/{run_id}/approvals", json={"approved": False})
        assert again.status_code == 400 and "nothing waiting" in again.json()["error"]["message"]


def test_a_paused_run_is_cancelled_and_its_stream_ends(server: Server) -> None:
    with server.client() as client:
        run_id = submit(client, "recommendations is over-provisioned at 12 replicas; cut its cost")
        with client.stream("GET", f"/v1/goals/{run_id}/events", timeout=120) as response:
            for event in iter_sse(response):
                if event["type"] == "run_finished" and event["status"] == "waiting_approval":
                    assert client.post(f"/v1/goals/{run_id}/cancel").json()["status"] == "cancelled"
                last = event
        assert last["type"] == "run_finished" and last["status"] == "cancelled"
        assert client.get(f"/v1/goals/{run_id}").json()["status"] == "cancelled"
        again = client.post(f"/v1/goals/{run_id}/cancel")
        assert again.status_code == 400 and "already cancelled" in again.json()["error"]["message"]


def test_every_v1_endpoint_needs_the_token_but_health_and_docs_do_not(server: Server) -> None:
    with server.client(auth=False) as anonymous:
        for method, path in [("GET", "/v1/runs"), ("POST", "/v1/goals"), ("GET", "/v1/models"),
                             ("POST", "/v1/chat/completions"), ("GET", "/v1/goals/x/events")]:
            response = anonymous.request(method, path, json={"goal": "x"})
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "token" in response.json()["error"]["message"]
        wrong = anonymous.get("/v1/runs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert anonymous.get("/healthz").json()["auth"] is True
        assert anonymous.get("/openapi.json").status_code == 200
        assert anonymous.get("/docs").status_code == 200
        page = anonymous.get("/")
        assert page.status_code == 200 and "agentmesh" in page.text
        assert anonymous.get("/static/app.js").status_code == 200


def test_bodies_over_the_limit_get_413(server: Server) -> None:
    with server.client() as client:
        big = client.post("/v1/goals", json={"goal": "x" * 70_000})
        assert big.status_code == 413
        assert "too large" in big.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit still holds for a streamed body
            for _ in range(80):
                yield b"x" * 1024

        streamed = client.post("/v1/goals", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "words"), [
    ("POST", "/v1/goals", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "JSON"),
    ("POST", "/v1/goals", {"json": {"goal": "   "}}, 400, "goal is empty"),
    ("POST", "/v1/goals", {"json": {"goal": "scale it", "graph": "nope"}}, 400, "no graph 'nope'"),
    ("POST", "/v1/goals", {"json": {"goal": "scale it", "approvals": "maybe"}}, 422, "approvals"),
    ("POST", "/v1/goals", {"json": {"goal": "scale it", "model": "gpt-4o"}}, 400, "API key"),
    ("POST", "/v1/goals", {"json": {"goal": "scale it", "colour": "red"}}, 422, "colour"),
    ("POST", "/v1/goals", {"json": ["a list"]}, 422, "invalid request"),
    ("POST", "/v1/goals", {"json": {"goal": "x" * 5000}}, 400, "characters"),
    ("GET", "/v1/goals/no-such-run", {}, 404, "no run"),
    ("GET", "/v1/goals/no-such-run/events", {}, 404, "no run"),
    ("GET", "/v1/goals/some-run/events", {"headers": {"Last-Event-ID": "abc"}}, 404, "no run"),
    ("POST", "/v1/goals/no-such-run/approvals", {"json": {"approved": True}}, 404, "no run"),
    ("POST", "/v1/goals/no-such-run/approvals", {"json": {}}, 422, "approved"),
    ("GET", "/v1/runs", {"params": {"limit": 0}}, 422, "limit"),
    ("POST", "/v1/chat/completions", {"json": {"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}}, 404,
     "does not exist"),
    ("POST", "/v1/chat/completions", {"json": {"model": "mesh", "messages": []}}, 422, "messages"),
    ("POST", "/v1/chat/completions", {"json": {"model": "mesh", "messages": [{"role": "assistant", "content": "hi"}]}},
     400, "last message"),
    ("DELETE", "/v1/runs", {}, 405, "Method Not Allowed"),
    ("GET", "/v1/nowhere", {}, 404, "Not Found"),
])
def test_bad_input_gets_a_4xx_with_a_clear_message(server: Server, method: str, path: str, kwargs: dict,
                                                   status: int, words: str) -> None:
    with server.client() as client:
        response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"], error
    assert error["type"] and error["code"]


def test_serve_refuses_a_non_loopback_address_without_a_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = make_home(tmp_path / "home")
    done = subprocess.run([*AGENTMESH, "serve", "--host", "0.0.0.0", "--port", str(free_port())], cwd=tmp_path,
                          env=child_env(home), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "token" in done.stderr and "Traceback" not in done.stderr
