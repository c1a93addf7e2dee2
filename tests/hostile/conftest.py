"""Fixtures for the hostile-conditions tests (helpers in hostile_faults)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentmesh.core.settings import Settings
from agentmesh.testing import OpenAIServer

KEY = "sk-hostile-SECRET-0123456789abcdef"
"""The API key of these tests: it must never show in a log, the audit, an artifact, an event or an error."""


@pytest.fixture
def endpoint() -> Iterator[OpenAIServer]:
    """A running OpenAI-protocol server; tests set its ``responder`` (or ``script``)."""
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def hostile_settings(home: Path, endpoint: OpenAIServer) -> Callable[..., Settings]:
    """Settings for the real ChatOpenAI path to ``endpoint``: one transport retry, a short timeout, no node retries."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            model="gpt-4o-mini",
            openai_api_key=KEY,
            openai_base_url=endpoint.base_url,
            model_retries=1,
            model_timeout_s=2.0,
            node_retries=0,
        )
        return Settings(**{**values, **overrides})

    return make
