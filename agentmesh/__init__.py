"""agentmesh: a team of LLM agents that plans, acts through audited tools and explains its decision.

LangGraph graphs, models through langchain-openai, every node a Prefect task. The public API:
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import (
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
    from .agents import Agent
    from .memory import DecisionMemory
    from .mesh import Mesh, MeshState
    from .nodes import actions_taken, record_event, use_tool
    from .runtime import aresume_run, arun_goal, compile, resume_run, run_goal
    from .schemas import Decision, Finding, Plan, PlanStep, Review
    from .settings import Settings, get_settings
    from .tools import Tool, ToolContext, ToolRegistry, tool

# The rest is imported on first use: LangGraph, LangChain and Prefect take a second or more to import, and the
# CLI prints its first line before they are needed (PEP 562 module __getattr__).
_LAZY = {
    "Agent": "agents",
    "DecisionMemory": "memory",
    "actions_taken": "nodes",
    "record_event": "nodes",
    "use_tool": "nodes",
    "Mesh": "mesh",
    "MeshState": "mesh",
    "aresume_run": "runtime",
    "arun_goal": "runtime",
    "compile": "runtime",
    "resume_run": "runtime",
    "run_goal": "runtime",
    "Decision": "schemas",
    "Finding": "schemas",
    "Plan": "schemas",
    "PlanStep": "schemas",
    "Review": "schemas",
    "Settings": "settings",
    "get_settings": "settings",
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


__version__ = "0.1.0"

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
    # tools
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "tool",
    # running goals
    "arun_goal",
    "aresume_run",
    "run_goal",
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
