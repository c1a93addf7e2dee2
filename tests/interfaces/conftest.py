"""One real `agentmesh serve` process per test module (see serve_harness)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_harness import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve")) as found:
        yield found
