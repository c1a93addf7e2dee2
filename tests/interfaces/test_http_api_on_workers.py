"""The HTTP API's tests (test_http_api) against `agentmesh serve --processes 1`: every goal runs in the server's
goal-worker process (agentmesh.runtime.goal_workers), and the API behaves the same — events, resumed streams,
approvals resumed on the worker, cancellation, auth and errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_harness import Server, running_server
from test_http_api import *  # noqa: F403  (the same tests, collected again here with the fixture below)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve-workers"), args=("--processes", "1")) as found:
        yield found


def test_the_goals_ran_in_the_worker_process(server: Server) -> None:
    """Every step of every goal the tests above ran was recorded by one process, not the server's."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{server.home / 'agentmesh.db'}")
    with engine.connect() as conn:
        workers = {row.worker for row in conn.execute(sa.text("SELECT DISTINCT worker FROM steps"))}
    engine.dispose()
    assert len(workers) == 1, workers
    assert int(workers.pop().rsplit(":", 1)[1]) != server.process.pid
