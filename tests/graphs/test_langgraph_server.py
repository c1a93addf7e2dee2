"""agentmesh graphs are LangGraph-server graphs: `langgraph dev` started with the repository's `langgraph.json`
serves every bundled graph, and a run started through the official `langgraph_sdk` client — on a new thread, with
just the goal as input — is an agentmesh run (run id = thread id): the same gateway, policy, audit, budgets and
Prefect flow run (a task run per node) as `agentmesh run`. An approval the policy asks for is the server run's
interrupt, resumed with `Command(resume=...)` from the SDK; `RemoteGraph` pointing at the server works as a node.

One real `langgraph dev` process (from `langgraph-cli[inmem]`) for the module, on a free port, with its own
AGENTMESH_HOME and the offline model; the test session's local Prefect server records the runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict
from uuid import UUID, uuid4

import httpx
import pytest

from agentmesh.core.bundled import DEFAULT_POLICY_FILE
from agentmesh.core.exceptions import UserError
from agentmesh.core.settings import Settings
from agentmesh.persistence import audit
from agentmesh.persistence.database import get_engine
from agentmesh.persistence.runs import run_result
from agentmesh.runtime.prefect import configure_prefect

pytest.importorskip("langgraph_api", reason="needs langgraph-cli[inmem] (the dev extra)")
from langgraph_sdk import get_client  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MESH_GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"
REMOTE_GOAL = "inventory-svc p95 latency is 400 ms; bring it under 200 ms without doubling its cost"
HEALING_GOAL = "Check the health of every service and repair what is degraded within policy; escalate what cannot be repaired."
START_S = 600.0
"""How long `langgraph dev` may take to answer (measured here: ~75 s on a busy 2-core machine)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`langgraph dev --no-browser` on the repository's langgraph.json (copied to a folder of its own, so the
    server's `.langgraph_api` state stays out of the checkout); its URL and AGENTMESH_HOME."""
    home = tmp_path_factory.mktemp("server") / "home"
    home.mkdir()
    # The policy makes scale_service wait for a person: the mesh's scale becomes an approval interrupt.
    policy = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    (home / "policy.toml").write_text(policy.replace("approval_required = []", 'approval_required = ["scale_service"]'))
    configure_prefect(Settings(home=home))  # the session's local Prefect server is up before the dev server needs it
    folder = tmp_path_factory.mktemp("root")
    shutil.copy(ROOT / "langgraph.json", folder / "langgraph.json")
    port = _free_port()
    env = {**os.environ, "AGENTMESH_HOME": str(home), "AGENTMESH_MODEL": "offline"}
    log = (folder / "server.log").open("wb")
    cli = Path(sys.executable).with_name("langgraph")
    process = subprocess.Popen([str(cli), "dev", "--no-browser", "--allow-blocking", "--no-reload", "--port", str(port)],
                               cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"langgraph dev exited {process.returncode}: {(folder / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not answer in {START_S:.0f} s: {(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, home
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _interrupts(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for task in state.get("tasks") or [] for i in task.get("interrupts") or []]


async def _run_to_decision(url: str, graph: str, goal: str, verdict: dict[str, Any] | None = None
                           ) -> tuple[str, list[list[dict[str, Any]]]]:
    """Start `graph` on a new thread with just the goal; resume every approval interrupt through the SDK with
    ``verdict`` (default: approved) until the run ends. The thread id and the interrupts seen, round by round."""
    client = get_client(url=url)
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, graph, input={"goal": goal}, raise_error=True)
    seen = []
    for _ in range(5):
        pending = _interrupts(await client.threads.get_state(thread))
        if not pending:
            break
        seen.append(pending)
        await client.runs.wait(thread, graph, command={"resume": {i["id"]: verdict or {"approved": True} for i in pending}},
                               raise_error=True)
    state = await client.threads.get_state(thread)
    assert not _interrupts(state) and state["next"] == [], state
    assert state["values"]["decision"]["summary"], state["values"]
    return thread, seen


def _record(home: Path, run_id: str) -> dict[str, Any]:
    return run_result(get_engine(Settings(home=home).resolved_database_url), run_id)


def _settled(home: Path, run_id: str, deadline_s: float = 120.0) -> dict[str, Any]:
    """The run's record once its server run has ended (no longer ``running``), or as it is at the deadline."""
    give_up = time.monotonic() + deadline_s
    while (result := _record(home, run_id))["status"] == "running" and time.monotonic() < give_up:
        time.sleep(0.2)
    return result


async def _check_prefect(result: dict[str, Any], deadline_s: float = 120.0) -> None:
    """Every step ran as a completed task run, named for its node, under a flow run of this run; the last flow
    run (the run record's) is completed and holds the last steps."""
    from prefect.client.orchestration import get_client as prefect_client

    assert result["prefect_api_url"], result
    async with prefect_client() as client:
        give_up = time.monotonic() + deadline_s
        while True:
            task_runs = {s["prefect_task_run_id"]: await client.read_task_run(UUID(s["prefect_task_run_id"]))
                         for s in result["steps"]}
            flow_run = await client.read_flow_run(UUID(result["flow_run_id"]))
            settled = all(t.state and t.state.is_completed() for t in task_runs.values()) and flow_run.state.is_final()
            if settled or time.monotonic() > give_up:
                break
            time.sleep(0.5)
        assert flow_run.state.is_completed(), flow_run.state
        assert flow_run.parameters["run_id"] == result["run_id"]
        flow_runs = {t.flow_run_id for t in task_runs.values()}
        for flow_run_id in flow_runs:
            assert (await client.read_flow_run(flow_run_id)).parameters["run_id"] == result["run_id"]
        for step in result["steps"]:
            task_run = task_runs[step["prefect_task_run_id"]]
            assert task_run.state.is_completed(), (step["node"], task_run.state)
            assert task_run.name.startswith(step["node"]), (task_run.name, step["node"])
            assert (step["agent"] or "router") in task_run.tags
        assert UUID(result["flow_run_id"]) in flow_runs


def test_the_root_langgraph_json_names_every_bundled_graph() -> None:
    root = json.loads((ROOT / "langgraph.json").read_text())
    bundled = json.loads((ROOT / "graphs" / "langgraph.json").read_text())
    assert list(root["graphs"]) == list(bundled["graphs"])
    from agentmesh.interfaces import langgraph_server

    for name, target in root["graphs"].items():
        module, _, attribute = target.partition(":")
        assert module == langgraph_server.__name__ and callable(vars(langgraph_server)[attribute]), name


async def test_the_server_lists_every_bundled_graph(server: tuple[str, Path]) -> None:
    url, _ = server
    assistants = await get_client(url=url).assistants.search(limit=100)
    bundled = json.loads((ROOT / "graphs" / "langgraph.json").read_text())["graphs"]
    assert {a["graph_id"] for a in assistants} == set(bundled)


async def test_mesh_through_the_sdk_pauses_for_approval_and_resumes_to_a_decision(server: tuple[str, Path]) -> None:
    url, home = server
    # The approver says "yes, but 6 replicas" (the edit passes the gateway again before it runs).
    thread, seen = await _run_to_decision(url, "mesh", MESH_GOAL, {"approved": True, "args": {"replicas": 6}})

    # The policy's approval surfaced as the server run's interrupt, with the call it waits on.
    assert len(seen) == 1 and len(seen[0]) == 1, seen
    (pending,) = seen[0]
    assert pending["value"]["type"] == "approval" and pending["value"]["tool"] == "scale_service"
    assert pending["value"]["args"]["service"] == "checkout-api"

    result = _record(home, thread)
    assert result["run_id"] == thread and result["graph"] == "mesh" and result["goal"] == MESH_GOAL
    assert result["status"] == "done", result["error"]
    assert result["decision"]["summary"] and result["model"] == {"name": "offline", "offline": True}
    assert result["usage"]["model_calls"] > 0  # the budget counted the run's model calls
    # The audit: the scale waited for approval, was approved by the resume, and ran once.
    engine = get_engine(Settings(home=home).resolved_database_url)
    (scale,) = [c for c in audit.list_calls(engine, thread) if c.tool == "scale_service"]
    assert (scale.status, scale.approval, scale.approver) == ("ok", "approved", "resume")
    assert scale.tool_call_id == pending["value"]["tool_call_id"]
    assert scale.args == pending["value"]["args"] and scale.args["replicas"] != 6  # the model's, kept
    assert scale.edited_args == {**scale.args, "replicas": 6} and scale.result["replicas"] == 6
    assert [a["tool"] for a in result["decision"]["actions"]] == ["scale_service"]
    nodes = [s["node"] for s in result["steps"]]
    assert nodes[0] == "plan" and nodes[-1] == "decide" and all(s["status"] == "done" for s in result["steps"])
    await _check_prefect(result)


async def test_self_healing_through_the_sdk_runs_to_a_decision(server: tuple[str, Path]) -> None:
    url, home = server
    thread, _ = await _run_to_decision(url, "self_healing", HEALING_GOAL)

    result = _record(home, thread)
    assert result["status"] == "done", result["error"]
    assert result["graph"] == "self_healing" and result["decision"]["outcome"]
    nodes = {s["node"] for s in result["steps"]}
    assert {"monitor", "decide"} <= nodes
    await _check_prefect(result)


async def test_a_run_with_no_goal_fails_with_one_line_and_records_nothing(server: tuple[str, Path]) -> None:
    url, home = server
    client = get_client(url=url)
    thread = (await client.threads.create())["thread_id"]
    out = await client.runs.wait(thread, "mesh", input={"question": "hello"}, raise_error=False)
    assert out["__error__"]["error"] == "ServedRunError", out
    assert out["__error__"]["message"].startswith("UserError: an agentmesh graph starts from its goal"), out
    assert (await client.runs.list(thread))[0]["status"] == "error"
    from agentmesh.core.exceptions import NotFoundError

    with pytest.raises(NotFoundError):
        _record(home, thread)


class _Outer(TypedDict, total=False):
    goal: str
    decision: dict[str, Any]


async def test_remote_graph_pointing_at_the_server_works_as_a_node(server: tuple[str, Path]) -> None:
    """A RemoteGraph node runs the served graph on the parent's thread id (the agentmesh run id); a remote approval
    pauses the parent with the remote interrupt, and the remote thread is resumed through RemoteGraph itself (a
    parent's resume re-sends the node's input, it does not forward the Command: LangGraph's RemoteGraph)."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.pregel.remote import RemoteGraph
    from langgraph.types import Command

    url, home = server

    def parent(graph: str) -> Any:
        builder = StateGraph(_Outer)
        builder.add_node("remote", RemoteGraph(graph, url=url))
        builder.add_edge(START, "remote")
        builder.add_edge("remote", END)
        return builder.compile(checkpointer=InMemorySaver())

    healing = {"configurable": {"thread_id": str(uuid4())}}
    done = await parent("self_healing").ainvoke({"goal": HEALING_GOAL}, healing)
    assert done["decision"]["summary"], done
    result = _record(home, healing["configurable"]["thread_id"])  # the remote thread is the parent's
    assert (result["status"], result["graph"]) == ("done", "self_healing"), result["error"]

    mesh = {"configurable": {"thread_id": str(uuid4())}}
    paused = await parent("mesh").ainvoke({"goal": REMOTE_GOAL}, mesh)
    (interrupt,) = paused["__interrupt__"]
    assert interrupt.value["tool"] == "scale_service" and interrupt.value["args"]["service"] == "inventory-svc"
    # RemoteGraph returns on the interrupt event; the server's run records the pause as it ends, a moment later.
    assert _settled(home, mesh["configurable"]["thread_id"])["status"] == "waiting_approval"
    resumed = await RemoteGraph("mesh", url=url).ainvoke(Command(resume={interrupt.id: {"approved": True}}), mesh)
    assert resumed["decision"]["summary"]
    result = _record(home, mesh["configurable"]["thread_id"])
    assert result["status"] == "done", result["error"]
    assert [a["args"]["service"] for a in result["decision"]["actions"]] == ["inventory-svc"]


async def test_a_named_approver_s_verdict_from_the_cli_is_what_the_sdk_resume_applies(server: tuple[str, Path]) -> None:
    """`agentmesh approve` on a served run records the verdict under the approver's name and leaves the resume to
    the thread's owner: the SDK's resume carries no verdict, the node reads the recorded one."""
    from agentmesh.runtime.approvals import aapprove
    from agentmesh.runtime.run import aresume_run

    url, home = server
    client = get_client(url=url)
    thread = (await client.threads.create())["thread_id"]
    goal = "notifications-worker p95 latency is 310 ms; bring it under 260 ms without doubling its cost"
    await client.runs.wait(thread, "mesh", input={"goal": goal}, raise_error=True)
    (pending,) = _interrupts(await client.threads.get_state(thread))
    settings = Settings(home=home)
    paused = _record(home, thread)
    assert paused["status"] == "waiting_approval" and paused["deployment"] == "langgraph-server"
    with pytest.raises(UserError, match="LangGraph server"):
        await aresume_run(thread, settings=settings)  # its graph state is the server's thread

    recorded = await aapprove(thread, approved=False, approver="alice", reason="not tonight", settings=settings)
    assert recorded["status"] == "waiting_approval"  # recorded, not resumed here
    await client.runs.wait(thread, "mesh", command={"resume": {pending["id"]: {"approved": None}}}, raise_error=True)

    result = _record(home, thread)
    assert result["status"] == "done", result["error"]
    engine = get_engine(settings.resolved_database_url)
    (scale,) = [c for c in audit.list_calls(engine, thread) if c.tool == "scale_service"]
    assert (scale.status, scale.approval, scale.approver, scale.approval_reason) == (
        "rejected", "rejected", "alice", "not tonight")
    assert result["decision"]["actions"] == []


async def test_under_langgraph_dev_without_allow_blocking_the_factory_says_what_to_do(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from agentmesh.runtime.served import ServedRunError, served_graph

    monkeypatch.setenv("LANGGRAPH_ALLOW_BLOCKING", "false")  # what `langgraph dev` sets without the flag
    with pytest.raises(ServedRunError, match=r"^UserError: .*langgraph dev --allow-blocking"):
        async with served_graph("mesh")({"configurable": {"thread_id": "t", "__is_for_execution__": True}}):
            pass


async def test_reading_a_served_graph_starts_no_run(home: Path) -> None:
    """The server also calls the factory to read a graph (schema, drawing, state): that is the durable graph, and
    no agentmesh run is established."""
    from agentmesh.runtime.compile import hosts
    from agentmesh.runtime.served import served_graph

    async with served_graph("self_healing")({"configurable": {"thread_id": "t"}}) as graph:
        assert {"monitor", "repair", "verify", "escalate", "decide"} <= set(graph.get_graph().nodes)
        assert "t" not in hosts
    assert not (home / "agentmesh.db").exists() or _record_missing(home, "t")


def _record_missing(home: Path, run_id: str) -> bool:
    from agentmesh.core.exceptions import NotFoundError

    try:
        _record(home, run_id)
    except NotFoundError:
        return True
    return False
