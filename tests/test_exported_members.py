"""The public API is ``agentmesh.__all__``: every name it exports exists, and the list changes only on purpose
(like httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import agentmesh

EXPECTED = [
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


def test_all_is_the_expected_public_api() -> None:
    assert agentmesh.__all__ == EXPECTED
    assert len(set(agentmesh.__all__)) == len(agentmesh.__all__)


def test_every_exported_name_exists() -> None:
    for name in agentmesh.__all__:
        assert hasattr(agentmesh, name), name


def test_exported_members_say_they_come_from_agentmesh() -> None:
    for name in agentmesh.__all__:
        member = getattr(agentmesh, name)
        module = getattr(member, "__module__", "")
        assert module == "agentmesh" or module.startswith("agentmesh."), (name, module)


def test_errors_share_one_root() -> None:
    errors = [getattr(agentmesh, n) for n in agentmesh.__all__ if n.endswith(("Error", "Exceeded", "Violation"))]
    assert all(issubclass(e, agentmesh.AgentmeshError) for e in errors)
    assert issubclass(agentmesh.ConfigError, agentmesh.UserError)
    assert issubclass(agentmesh.BudgetExceeded, agentmesh.RunError)


def test_version() -> None:
    assert isinstance(agentmesh.__version__, str) and agentmesh.__version__.count(".") >= 2
