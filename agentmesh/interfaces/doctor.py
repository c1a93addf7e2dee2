"""``agentmesh doctor``: is this installation able to run goals, and if not, what to fix.

Five checks, each one line: the installation (the bundled prompts, tools, graphs and eval suites are present),
the database (it connects, its tables exist, SQLite runs in WAL mode with a busy timeout), the configuration (the
plug-ins, tools and policy load; the policy names only tools and roles that exist), Prefect (the configured
API answers, or the state of the local server) and the model endpoint (offline needs nothing; otherwise
``GET {base_url}/models`` with the key); then one per configured MCP server (it starts or answers and lists its
tools). No check prints a secret: database URLs are shown with the password hidden,
and the API key never appears.

    >>> [c.name for c in run_checks(Settings(model="offline"))]  # doctest: +SKIP
    ['installation', 'database', 'configuration', 'prefect', 'model']
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentmesh.core.settings import Settings, mask_url

__all__ = ["Check", "run_checks"]

_TIMEOUT_S = 5.0


@dataclass(kw_only=True)
class Check:
    """The outcome of one check."""

    name: str
    """installation, database, prefect or model."""
    ok: bool
    """True when nothing needs fixing."""
    detail: str
    """What was found, in one line."""
    fix: str | None = None
    """What to do about it, when not ok."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in order; a check that raises is reported as failed, never as a crash."""
    checks = []
    for name, check in (("installation", _installation), ("database", _database), ("configuration", _configuration),
                        ("prefect", _prefect), ("model", _model)):
        try:
            checks.append(check(settings))
        except Exception as exc:  # a doctor must report, not crash
            checks.append(Check(name=name, ok=False, detail=f"the check itself failed: {type(exc).__name__}",
                                fix="please report it"))
    if settings.mcp.servers:
        checks.extend(_mcp_servers(settings))
    return checks


def _mcp_servers(settings: Settings) -> list[Check]:
    """One check per configured MCP server: it starts (or answers) and lists its tools."""
    from agentmesh.tools.mcp import check_servers

    try:
        reports = check_servers(settings)
    except Exception as exc:  # a doctor must report, not crash
        return [Check(name="mcp", ok=False, detail=f"the check itself failed: {type(exc).__name__}: {exc}",
                      fix="please report it")]
    def fix(name: str) -> str:
        if settings.mcp.servers[name].command:
            return (f"check the mcp.servers.{name} table of agentmesh.toml (is its command installed and on PATH?) "
                    f"and the server's log, {settings.resolved_home / 'mcp' / (name + '.log')}")
        return f"check that the server is running at its url, and the headers of the mcp.servers.{name} table"

    return [Check(name=f"mcp:{r.name}", ok=r.ok, detail=r.detail, fix=None if r.ok else fix(r.name)) for r in reports]


# What each bundled folder must hold for goals, graphs and evals to work.
_BUNDLED = {
    "prompts": ("*.md", "role prompt files"),
    "tools": ("*.py", "built-in tool modules"),
    "graphs": ("langgraph.json", "the graph registry"),
    "evals": ("*/*.yaml", "eval scenarios"),
}


def _installation(settings: Settings) -> Check:
    from agentmesh.core.bundled import bundled

    missing = []
    for kind, (pattern, what) in _BUNDLED.items():
        folder = bundled(kind)
        if not folder.is_dir() or not any(folder.glob(pattern)):
            missing.append(f"{kind} ({what}) not found in {folder}")
    if missing:
        return Check(name="installation", ok=False, detail="; ".join(missing),
                     fix="reinstall agentmesh (pip install --force-reinstall agentmesh): its package data is missing")
    return Check(name="installation", ok=True, detail="prompts, tools, graphs and evals are present")


def _database(settings: Settings) -> Check:
    from sqlalchemy import inspect, text

    from agentmesh.core.exceptions import AgentmeshError
    from agentmesh.persistence.database import get_engine

    url = settings.resolved_database_url
    shown = mask_url(url)
    try:
        engine = get_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            tables = set(inspect(conn).get_table_names())
            pragmas = {}
            if engine.dialect.name == "sqlite":
                pragmas = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "busy_timeout")}
    except AgentmeshError as exc:
        return Check(name="database", ok=False, detail=str(exc).splitlines()[0],
                     fix="check AGENTMESH_DATABASE_URL (or AGENTMESH_HOME for the default SQLite file)")
    except Exception as exc:
        return Check(name="database", ok=False, detail=f"cannot use {shown}: {type(exc).__name__}",
                     fix="check AGENTMESH_DATABASE_URL: the server, its credentials and the database name")
    needed = {"runs", "steps", "model_calls", "tool_calls", "events"}
    if not needed <= tables:
        return Check(name="database", ok=False, detail=f"{shown} lacks tables {sorted(needed - tables)}",
                     fix="give the database user the right to create tables, then run any goal")
    if pragmas and (str(pragmas["journal_mode"]).lower() != "wal" or not pragmas["busy_timeout"]):
        return Check(name="database", ok=False, detail=f"{shown}: journal_mode={pragmas['journal_mode']}, "
                     f"busy_timeout={pragmas['busy_timeout']}",
                     fix="the SQLite file must allow WAL mode: put AGENTMESH_HOME on a local disk, not a network share")
    mode = f" (WAL, busy timeout {pragmas['busy_timeout']} ms)" if pragmas else ""
    return Check(name="database", ok=True, detail=f"{shown}: {len(needed)} tables present{mode}")


def _configuration(settings: Settings) -> Check:
    """The plug-ins, the tools and the policy load, and the policy names only tools and roles that exist."""
    from agentmesh.core.exceptions import ConfigError
    from agentmesh.runtime.components import components

    try:
        parts = components(settings)
    except ConfigError as exc:
        return Check(name="configuration", ok=False, detail=str(exc).splitlines()[0],
                     fix="correct the file and line named; `agentmesh tools` lists the tools, `agentmesh agents` the roles")
    return Check(name="configuration", ok=True,
                 detail=f"policy {parts.policy.source}: {len(parts.registry.tools)} tools, every name it uses exists")


def _prefect(settings: Settings) -> Check:
    import httpx

    from agentmesh.runtime.prefect import _alive, local_server_state

    url = os.environ.get("PREFECT_API_URL")
    if url and os.environ.get("AGENTMESH_LOCAL_PREFECT") != "1":
        try:
            healthy = httpx.get(f"{url.rstrip('/')}/health", timeout=_TIMEOUT_S).status_code == 200
        except httpx.HTTPError as exc:
            return Check(name="prefect", ok=False, detail=f"the Prefect API at {url} does not answer ({type(exc).__name__})",
                         fix="start that server (prefect server start) or unset PREFECT_API_URL to use a local one")
        if not healthy:
            return Check(name="prefect", ok=False, detail=f"the Prefect API at {url} is not healthy",
                         fix="check the Prefect server's log; or unset PREFECT_API_URL to use a local one")
        return Check(name="prefect", ok=True, detail=f"the Prefect API at {url} answers")
    if settings.prefect == "embedded":
        return Check(name="prefect", ok=True, detail="embedded: each process runs Prefect's ephemeral server (no schedules)")
    home = Path(os.environ.get("PREFECT_HOME") or settings.resolved_home / "prefect")
    state = local_server_state(home)
    if state and _alive(state.get("pid")):
        try:
            healthy = httpx.get(f"{state['url']}/health", timeout=_TIMEOUT_S).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy:
            return Check(name="prefect", ok=True, detail=f"the local Prefect server at {state['url']} answers")
        return Check(name="prefect", ok=False,
                     detail=f"the local Prefect server (pid {state['pid']}) runs but does not answer",
                     fix=f"see {home / 'agentmesh-server.log'}; stop it (kill {state['pid']}) and the next run restarts it")
    return Check(name="prefect", ok=True,
                 detail=f"no local Prefect server running under {home}; the first goal starts one")


def _model(settings: Settings) -> Check:
    import httpx

    if settings.offline:
        return Check(name="model", ok=True, detail="offline model (no OPENAI_API_KEY): deterministic rules, no endpoint")
    base = (settings.openai_base_url or "https://api.openai.com/v1").rstrip("/")
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    name = settings.model_name
    try:
        response = httpx.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"}, timeout=_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Check(name="model", ok=False, detail=f"cannot reach {base} ({type(exc).__name__})",
                     fix="check OPENAI_BASE_URL (it usually ends in /v1) and that the server is running")
    if response.status_code in (401, 403):
        return Check(name="model", ok=False, detail=f"{base} rejected the API key ({response.status_code})",
                     fix="check OPENAI_API_KEY")
    if response.status_code != 200:
        return Check(name="model", ok=False, detail=f"{base}/models answered {response.status_code}",
                     fix="check OPENAI_BASE_URL (it usually ends in /v1)")
    try:
        listed = {m.get("id") for m in response.json().get("data", [])}
    except (ValueError, AttributeError):
        listed = set()
    if listed and name not in listed:
        return Check(name="model", ok=False, detail=f"{base} does not list model {name!r}",
                     fix=f"set AGENTMESH_MODEL to one it serves, e.g. {sorted(listed)[0]!r}")
    return Check(name="model", ok=True, detail=f"{base} answers; model {name!r}" + (" is listed" if listed else ""))
