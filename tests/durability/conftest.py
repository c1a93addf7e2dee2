"""Durability tests: the offline rules served over HTTP so a run is slow enough to kill at a chosen point."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentmesh.testing import OpenAIServer
from agentmesh.testing.offline_responder import offline_responder


@pytest.fixture
def slow_model() -> Iterator[OpenAIServer]:
    """The offline model's rules over the real OpenAI protocol, 0.1 s a reply."""
    with OpenAIServer(responder=offline_responder, latency_s=0.1) as server:
        yield server
