"""Prefect set-up: analytics off, a Prefect home under AGENTMESH_HOME, and the API in use.

Called before the first ``import prefect`` of a process (Prefect reads its settings at import).
If ``PREFECT_API_URL`` is set, that server is used; otherwise Prefect's embedded mode.
"""

from __future__ import annotations

import os

from .settings import Settings

_configured = False


def configure_prefect(settings: Settings) -> None:
    global _configured
    if _configured:
        return
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_HOME", str(settings.resolved_home / "prefect"))
    # Task and flow results stay in memory: agentmesh persists what matters in its own database.
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    # Prefect logs go to stderr at WARNING so `--json` stdout stays one document; the run logger still records.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "true")
    _configured = True


def api_url() -> str | None:
    """The Prefect API runs are recorded in; None for the embedded (ephemeral) server."""
    return os.environ.get("PREFECT_API_URL") or None
