"""The workload six ways. Each variant is built once per process (as an application builds its graph or agent)
and then runs the workload once per call: ``await variant.run(token)`` returns what the run produced.

- ``langgraph``: the ReAct graph (``react.py``), compiled by LangGraph, no checkpointer, no Prefect.
- ``langgraph_prefect``: the same graph inside a ``@flow``, each node a plain Prefect ``@task`` (results not
  persisted, no cache policy: what a careful user writes by hand).
- ``pydantic_ai``: a Pydantic AI ``Agent`` with the three tools, text output.
- ``pydantic_ai_prefect``: the same agent with the ``PrefectDurability`` capability, run inside a ``@flow``
  (each model request and tool call a Prefect task; Pydantic AI's default task settings).
- ``agentmesh_agent``: ``arun_goal(graph="peers-agent")``: one node, one ``agentmesh.Agent`` step.
- ``agentmesh_react``: ``arun_goal(graph="peers-react")``: the ReAct graph, made durable by agentmesh
  (``compile``: each node a Prefect task), tools through the gateway.

Only public APIs: ``agentmesh`` (``arun_goal``, ``Settings``), LangGraph, Prefect, Pydantic AI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import workload  # noqa: E402

VARIANTS = ("langgraph", "langgraph_prefect", "pydantic_ai", "pydantic_ai_prefect", "agentmesh_agent",
            "agentmesh_react")
LABELS = {
    "langgraph": "LangGraph (plain)",
    "langgraph_prefect": "LangGraph, nodes as Prefect tasks",
    "pydantic_ai": "Pydantic AI",
    "pydantic_ai_prefect": "Pydantic AI + PrefectDurability",
    "agentmesh_agent": "agentmesh, an Agent step",
    "agentmesh_react": "agentmesh, ReAct graph via compile",
}
USES_PREFECT = {"langgraph_prefect", "pydantic_ai_prefect", "agentmesh_agent", "agentmesh_react"}
NEEDS = {"pydantic_ai": "pydantic_ai", "pydantic_ai_prefect": "pydantic_ai"}  # variant -> module of the bench extra
EXPECTED_AUDIT = [(name, "ok") for name in workload.TOOLS]
AGENTMESH_NODES = {"agentmesh_agent": 1, "agentmesh_react": workload.STEPS}


def available(name: str) -> bool:
    import importlib.util

    return name not in NEEDS or importlib.util.find_spec(NEEDS[name]) is not None


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


class Variant:
    name = ""

    async def run(self, token: str) -> dict[str, Any]:
        """One run of the workload: ``{"answer": str, "problems": [...], "flow_run_id": str | None}``
        (``problems``: what the framework's own record says went wrong)."""
        raise NotImplementedError


class LangGraph(Variant):
    name = "langgraph"

    def __init__(self) -> None:
        import react

        self.graph = react.build().compile()

    async def run(self, token: str) -> dict[str, Any]:
        import react

        values = await self.graph.ainvoke({"goal": workload.goal(token)})
        return {"answer": react.answer_of(values), "problems": [], "flow_run_id": None}


class LangGraphPrefect(Variant):
    name = "langgraph_prefect"

    def __init__(self) -> None:
        import react
        from prefect import flow, task
        from prefect.cache_policies import NONE

        def wrap(name: str, fn: Any) -> Any:
            node_task = task(fn, name=name, cache_policy=NONE, persist_result=False)

            async def node(state: Any) -> Any:
                return await node_task(state)

            return node

        graph = react.build(wrap=wrap).compile()

        @flow(name="peers-langgraph-prefect", persist_result=False)
        async def peers_flow(goal: str) -> dict[str, Any]:
            values = await graph.ainvoke({"goal": goal})
            return {"answer": react.answer_of(values), "problems": [], "flow_run_id": _flow_run_id()}

        self.flow = peers_flow

    async def run(self, token: str) -> dict[str, Any]:
        return dict(await self.flow(workload.goal(token)))


def _pydantic_agent(durable: bool) -> Any:
    from openai import AsyncOpenAI
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = AsyncOpenAI(base_url=os.environ["BENCH_OPENAI_BASE_URL"], api_key="bench", max_retries=0)
    model = OpenAIChatModel("bench", provider=OpenAIProvider(openai_client=client))
    capabilities: list[Any] = []
    if durable:
        from pydantic_ai.durable_exec.prefect import PrefectDurability

        capabilities.append(PrefectDurability())
    return Agent(model, tools=list(workload.FUNCTIONS.values()), name="peers_durable" if durable else "peers",
                 capabilities=capabilities)


class PydanticAI(Variant):
    name = "pydantic_ai"

    def __init__(self) -> None:
        self.agent = _pydantic_agent(durable=False)

    async def run(self, token: str) -> dict[str, Any]:
        result = await self.agent.run(workload.goal(token))
        return {"answer": str(result.output), "problems": [], "flow_run_id": None}


class PydanticAIPrefect(Variant):
    name = "pydantic_ai_prefect"

    def __init__(self) -> None:
        from prefect import flow

        agent = _pydantic_agent(durable=True)

        @flow(name="peers-pydantic-ai")
        async def peers_flow(goal: str) -> dict[str, Any]:
            result = await agent.run(goal)
            return {"answer": str(result.output), "problems": [], "flow_run_id": _flow_run_id()}

        self.flow = peers_flow

    async def run(self, token: str) -> dict[str, Any]:
        return dict(await self.flow(workload.goal(token)))


class Agentmesh(Variant):
    def __init__(self, name: str) -> None:
        from agentmesh import Settings

        self.name = name
        self.graph = "peers-agent" if name == "agentmesh_agent" else "peers-react"
        self.settings = Settings(
            graphs_paths=[HERE / "graphs"], tools_paths=[HERE / "tools"], model="gpt-4o-mini",
            openai_base_url=os.environ["BENCH_OPENAI_BASE_URL"], openai_api_key="bench",
        )

    async def run(self, token: str) -> dict[str, Any]:
        from agentmesh import arun_goal

        result = await arun_goal(workload.goal(token), graph=self.graph, settings=self.settings)
        return {"answer": ((result.get("decision") or {}).get("summary") or ""), "flow_run_id": result.get("flow_run_id"),
                "problems": audit_problems(self.name, result)}


def same_server(result: dict[str, Any]) -> list[str]:
    """The run was recorded in the Prefect server the other variants use (when the harness named one)."""
    expected = os.environ.get("BENCH_PREFECT_API_URL")
    if expected and result.get("prefect_api_url") != expected:
        return [f"recorded in Prefect at {result.get('prefect_api_url')}, not the shared server {expected}"]
    return []


def audit_problems(name: str, result: dict[str, Any]) -> list[str]:
    """What agentmesh's own record of a run says is wrong: its status, its steps, its audit of tool calls."""
    problems = []
    if result.get("status") != "done":
        problems.append(f"run {result.get('status')}: {result.get('error')}")
    steps = result.get("steps") or []
    if len(steps) != AGENTMESH_NODES[name]:
        problems.append(f"{len(steps)} steps recorded, expected {AGENTMESH_NODES[name]}")
    audit = [(c.get("tool"), c.get("status")) for s in steps for c in s.get("tool_calls") or []]
    if audit != EXPECTED_AUDIT:
        problems.append(f"audit {audit}, expected {EXPECTED_AUDIT}")
    return problems + same_server(result)


def make(name: str) -> Variant:
    if name == "langgraph":
        return LangGraph()
    if name == "langgraph_prefect":
        return LangGraphPrefect()
    if name == "pydantic_ai":
        return PydanticAI()
    if name == "pydantic_ai_prefect":
        return PydanticAIPrefect()
    if name in ("agentmesh_agent", "agentmesh_react"):
        return Agentmesh(name)
    raise ValueError(f"no variant {name!r}; one of {', '.join(VARIANTS)}")
