"""Fixtures for the real ``langchain-openai`` HTTP path: a local server, settings for it, VCR cassettes.

Cassettes replay only (record mode ``none``) unless ``AGENTMESH_RECORD=1`` (mode ``once``). Credentials are
filtered from every recorded request. Requests match on method, path and query, not host or port, so a
cassette recorded against a local server on any port replays with no server at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import vcr

from agentmesh.core.settings import Settings
from agentmesh.models import TransportRetry
from agentmesh.testing import OpenAIServer

CASSETTES = Path(__file__).parent / "cassettes"
TEST_KEY = "sk-test-agentmesh-0123456789abcdef"
"""The API key tests use; it must never show in an error message or a cassette."""
FILTER_HEADERS = ["authorization", "api-key", "openai-api-key"]


def record_mode() -> str:
    return "once" if os.environ.get("AGENTMESH_RECORD") == "1" else "none"


def _model_requests_only(request: Any) -> Any:
    # A whole goal also talks to the local Prefect server over httpx: those requests are neither recorded nor
    # replayed (None lets them through), so a cassette holds the model's conversation only.
    return request if request.path.rstrip("/").endswith(("/chat/completions", "/models")) else None


def make_vcr(directory: Path = CASSETTES, *, mode: str | None = None) -> vcr.VCR:
    return vcr.VCR(
        cassette_library_dir=str(directory),
        record_mode=mode or record_mode(),
        filter_headers=FILTER_HEADERS,
        before_record_request=_model_requests_only,
        match_on=["method", "path", "query"],
        decode_compressed_response=True,
    )


@pytest.fixture
def vcr_cassette() -> Callable[..., AbstractContextManager[Any]]:
    """``with vcr_cassette("name"):`` replays ``tests/models/cassettes/name.yaml`` (records with AGENTMESH_RECORD=1).

    ``directory=`` and ``mode=`` override where the cassette lives and the record mode.
    """

    def open_cassette(
        name: str, *, directory: Path = CASSETTES, mode: str | None = None
    ) -> AbstractContextManager[Any]:
        return make_vcr(directory, mode=mode).use_cassette(f"{name}.yaml")

    return open_cassette


@pytest.fixture
def recording() -> bool:
    """True when cassettes are being (re-)recorded: AGENTMESH_RECORD=1."""
    return record_mode() != "none"


@pytest.fixture
def api_key() -> str:
    """The API key tests use; it must never show in an error message or a cassette."""
    return TEST_KEY


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    """A running server with an empty script; tests append to ``server.script`` or set ``server.responder``."""
    with OpenAIServer() as running:
        yield running


@pytest.fixture
def waits() -> list[float]:
    """The waits the retry transport asked for, in order (nothing actually sleeps)."""
    return []


@pytest.fixture
def retry(waits: list[float]) -> Callable[..., TransportRetry]:
    """A TransportRetry that records its waits in ``waits`` instead of sleeping."""

    def make(retries: int = 3, **kwargs: Any) -> TransportRetry:
        return TransportRetry(retries=retries, sleep=waits.append, **kwargs)

    return make


@pytest.fixture
def settings_for(home: Path) -> Callable[..., Settings]:
    """Settings pointing at a server (or any base URL), with the test key."""

    def make(target: OpenAIServer | str, **overrides: Any) -> Settings:
        base_url = target if isinstance(target, str) else target.base_url
        values: dict[str, Any] = {
            "model": "gpt-4o-mini",
            "openai_api_key": TEST_KEY,
            "openai_base_url": base_url,
        }
        return Settings(**{**values, **overrides})

    return make
