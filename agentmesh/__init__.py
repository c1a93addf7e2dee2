"""agentmesh: a team of LLM agents that plans, acts through audited tools and explains its decision.

LangGraph graphs, models through langchain-openai, every node a Prefect task. The public API is ``__all__``.

The package in layers; a module imports only from its own layer or the ones above it in this list
(``tests/test_layers.py`` reads this list and checks every import, and that no import cycle exists):

 0. core: agentmesh.core
    exceptions, settings, structured outputs (schemas), step-input messages, resources, bundled folders
 1. persistence: agentmesh.persistence
    the tables (one leaf owns the metadata), engines, runs and steps, the audit, events, checkpoints
 2. prompts and tools: agentmesh.prompts, agentmesh.tools
    prompt files and their versions; the tool decorator, ToolContext and the registry
 3. models: agentmesh.models
    ChatOpenAI with one retry layer, usage and cost, the offline model (a plug-in's rules drive it)
 4. gateway: agentmesh.gateway
    the gateway every tool call passes, the policy, approval deadlines
 5. agents and the run context: agentmesh.agents
    RunContext, an agent's step, the mesh, helpers for a graph's own nodes
 6. runtime: agentmesh.runtime
    the run-context factory (composition root), compile, the goal flow, run/resume/approve, remote steps,
    plug-in loading, the graph registry, Prefect set-up
 7. features: agentmesh.memory, agentmesh.evaluation, agentmesh.evolution, agentmesh.deployments
 8. plug-ins: agentmesh.plugins
    the sample operations world, registered as a user's domain would be
 9. interfaces: agentmesh.interfaces, agentmesh.testing, agentmesh.__main__
    the CLI, the HTTP API and web page, the chat; test seams (scripted model, local OpenAI-protocol server)
10. the public API: agentmesh
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# Prefect's client analytics start on `import prefect` (a first-run notice on the terminal, events sent out);
# agentmesh keeps them off (agentmesh.runtime.prefect), so before any module here can import Prefect. An explicit
# DO_NOT_TRACK is kept.
os.environ.setdefault("DO_NOT_TRACK", "1")

from agentmesh.core.exceptions import (
    AgentmeshError,
    BudgetExceeded,
    ConfigError,
    ModelError,
    NotFoundError,
    PolicyViolation,
    RunError,
    ToolError,
    UserError,
)

if TYPE_CHECKING:
    from agentmesh.agents.agent import Agent
    from agentmesh.agents.mesh import Mesh, MeshState
    from agentmesh.agents.nodes import actions_taken, record_event, use_tool
    from agentmesh.core.schemas import Decision, Finding, Plan, PlanStep, Review
    from agentmesh.core.settings import Settings, get_settings
    from agentmesh.memory import DecisionMemory
    from agentmesh.runtime.compile import compile
    from agentmesh.runtime.goal_workers import arun_goals, run_goals
    from agentmesh.runtime.plugins import Plugin
    from agentmesh.runtime.run import aresume_run, arun_goal, resume_run, run_goal
    from agentmesh.tools import Tool, ToolContext, ToolRegistry, tool

# The rest is imported on first use: LangGraph, LangChain and Prefect take a second or more to import, and the
# CLI prints its first line before they are needed (PEP 562 module __getattr__).
_LAZY = {
    "Agent": "agents.agent",
    "DecisionMemory": "memory",
    "actions_taken": "agents.nodes",
    "record_event": "agents.nodes",
    "use_tool": "agents.nodes",
    "Mesh": "agents.mesh",
    "MeshState": "agents.mesh",
    "aresume_run": "runtime.run",
    "arun_goal": "runtime.run",
    "arun_goals": "runtime.goal_workers",
    "compile": "runtime.compile",
    "resume_run": "runtime.run",
    "run_goal": "runtime.run",
    "run_goals": "runtime.goal_workers",
    "Plugin": "runtime.plugins",
    "Decision": "core.schemas",
    "Finding": "core.schemas",
    "Plan": "core.schemas",
    "PlanStep": "core.schemas",
    "Review": "core.schemas",
    "Settings": "core.settings",
    "get_settings": "core.settings",
    "Tool": "tools",
    "ToolContext": "tools",
    "ToolRegistry": "tools",
    "tool": "tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentmesh' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


from agentmesh.core import __version__ as __version__  # noqa: E402

__all__ = [
    # building graphs
    "Agent",
    "Mesh",
    "MeshState",
    "compile",
    # graph nodes
    "DecisionMemory",
    "actions_taken",
    "record_event",
    "use_tool",
    # tools and plug-ins
    "Plugin",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "tool",
    # running goals
    "arun_goal",
    "arun_goals",
    "aresume_run",
    "run_goal",
    "run_goals",
    "resume_run",
    # structured outputs
    "Decision",
    "Finding",
    "Plan",
    "PlanStep",
    "Review",
    # configuration
    "Settings",
    "get_settings",
    # errors
    "AgentmeshError",
    "BudgetExceeded",
    "ConfigError",
    "ModelError",
    "NotFoundError",
    "PolicyViolation",
    "RunError",
    "ToolError",
    "UserError",
]
