"""agentmesh: a team of LLM agents that plans, acts through audited tools and explains its decision.

LangGraph graphs, models through langchain-openai, every node a Prefect task. The public API:
"""

from __future__ import annotations

from .agents import Agent
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
from .memory import DecisionMemory
from .mesh import Mesh, MeshState
from .nodes import actions_taken, record_event, use_tool
from .runtime import aresume_run, arun_goal, compile, resume_run, run_goal
from .schemas import Decision, Finding, Plan, PlanStep, Review
from .settings import Settings, get_settings
from .tools import Tool, ToolContext, ToolRegistry, tool

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
