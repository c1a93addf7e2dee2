"""Fixtures for the offline model's tests: a real world and a step runner over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from offline_harness import POLICY_FILE, StepRun

from agentmesh.gateway.policy import Policy
from agentmesh.persistence.database import get_engine
from agentmesh.plugins.operations import plugin
from agentmesh.plugins.operations.limits import WorldLimits
from agentmesh.plugins.operations.world import World
from agentmesh.tools import ToolRegistry


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return ToolRegistry.load(plugin.tools)


@pytest.fixture
def policy() -> Policy:
    return Policy.load(POLICY_FILE, sections=plugin.policy_tables)


@pytest.fixture
def world(tmp_path: Path, policy: Policy) -> World:
    world = World(get_engine(f"sqlite:///{tmp_path}/world.sqlite"), home=tmp_path,
                  limits=policy.section("world", WorldLimits))
    world.init()
    return world


@pytest.fixture
def run_step(world: World, registry: ToolRegistry, policy: Policy) -> StepRun:
    return StepRun(world, registry, policy)
