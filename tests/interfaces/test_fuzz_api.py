"""Fuzzing the HTTP API from its own OpenAPI schema (schemathesis, in-process over ASGI): whatever a client
sends, the answer is never a 5xx. Goals are not executed here (the runtime is replaced by a stub that
returns at once); the other tests run real goals over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")


def _app() -> Any:
    import contextlib
    import tempfile

    from agentmesh.core.settings import Settings
    from agentmesh.interfaces.http import create_app

    app = create_app(Settings(home=tempfile.mkdtemp(prefix="agentmesh-fuzz-"), model="offline"), token=None)

    @contextlib.asynccontextmanager
    async def no_warm_up(app: Any) -> Any:
        yield  # no goal runs here: neither the Prefect server nor the world is needed (nor started at collection)

    app.router.lifespan_context = no_warm_up
    return app


# From the app's own schema, without a request: loading it must not start anything at collection time.
_APP = _app()
schema = schemathesis.openapi.from_dict(_APP.openapi())
schema.app = _APP


@pytest.fixture(autouse=True)
def _no_real_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import agentmesh.runtime.run

    async def accepted(goal: str, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(agentmesh.runtime.run, "arun_goal", accepted)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error(case: Any) -> None:
    response = case.call(timeout=10)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["message"] and error["code"], response.text
