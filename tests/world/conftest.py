"""Fixtures for the world: a sample world on SQLite and on PostgreSQL, and tools called as the gateway will."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentmesh.core.resources import Resources
from agentmesh.core.settings import Settings
from agentmesh.gateway.policy import Policy
from agentmesh.persistence.database import get_engine
from agentmesh.plugins.operations import plugin
from agentmesh.plugins.operations.limits import WorldLimits
from agentmesh.plugins.operations.world import World
from agentmesh.tools import ToolContext, ToolRegistry


@pytest.fixture(scope="session")
def registry() -> ToolRegistry:
    return ToolRegistry.load(plugin.tools)


@pytest.fixture
def limits() -> WorldLimits:
    return Policy.default(sections=plugin.policy_tables).section("world", WorldLimits)


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, home: Path, limits: WorldLimits) -> World:
    """The default sample world, on each database."""
    url = f"sqlite:///{home / 'agentmesh.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    w = World(get_engine(url), home=home, limits=limits)
    w.init()
    return w


@pytest.fixture
def sqlite_world(home: Path, limits: WorldLimits) -> World:
    w = World(get_engine(f"sqlite:///{home / 'agentmesh.db'}"), home=home, limits=limits)
    w.init()
    return w


Call = Callable[..., Any]


@pytest.fixture
def call(world: World, registry: ToolRegistry, home: Path) -> Call:
    """Call a tool by name as the gateway will: validate the arguments, build a context, run it.

    ``call("scale_service", service="checkout-api", replicas=6, call_id="c1")``; a repeated ``call_id``
    repeats the idempotency key.
    """
    counter = itertools.count(1)
    settings = Settings(home=home)

    def run(name: str, *, call_id: str | None = None, agent: str = "optimizer", **args: Any) -> Any:
        tool = registry.get(name)
        validated = tool.args_model.model_validate(args)
        ctx = ToolContext(run_id="run-1", tool_call_id=call_id or f"call-{next(counter)}", agent=agent,
                          settings=settings, resources=Resources({World: lambda: world}))
        kwargs = dict(validated)
        if tool.context_param:
            kwargs[tool.context_param] = ctx
        return tool.function(**kwargs)

    return run
