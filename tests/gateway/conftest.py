"""Fixtures for the tool gateway tests (helpers in gateway_harness)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_harness import GatewayHarness

from agentmesh.agents.context import StepScope
from agentmesh.core.settings import Settings
from agentmesh.runtime.components import build_run_context

EVERYTHING = "gateway test on every service, every dataset and every ticket"


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings for a scripted run in the test's own home (its world is initialised on first use)."""
    return Settings(model="offline", node_retries=0)


@pytest.fixture
def make_gateway(settings: Settings) -> Callable[..., GatewayHarness]:
    """``make_gateway(run_id="r1", settings=..., approvals="auto")``: a harness over a real world. Its default goal
    refers to every service, dataset and ticket, so the scope guard lets every write through (tests of the guard
    give a narrower ``goal``)."""
    counter = itertools.count(1)

    def make(*, run_id: str | None = None, settings: Settings = settings, approvals: str = "auto",
             goal: str = EVERYTHING) -> GatewayHarness:
        run = build_run_context(settings, run_id=run_id or f"run-{next(counter)}", goal=goal,
                                graph="mesh", approvals=approvals)
        return GatewayHarness(run=run, scope=StepScope(key="optimizer:test", node="optimizer", agent="optimizer"))

    return make
