"""Runs and their steps: the records, and reading them back as the JSON of ``agentmesh run --json`` and
``agentmesh runs show``, and run listings.

The run JSON (other tools and tests rely on it): ``run_id``, ``flow_run_id``, ``prefect_api_url``, ``flow_run_url``
(the flow run's page in the Prefect UI), ``trace_id`` (its OpenTelemetry trace, when tracing was on), ``goal``,
``graph``, ``status``, ``error``, ``model`` {``name``, ``offline``}, ``decision`` {``summary``, ``rationale``,
``confidence``, ``outcome``, ``open_risks``, ``actions``}, ``plan``, ``steps`` [{``node``, ``agent``, ``started``,
``ended``, ``prefect_task_run_id``, ``tool_calls`` [{``id``, ``tool``, ``args``, ``status``, ``result``,
``reason``, ``approver``, ``scope``}]}], ``scope`` (what the goal refers to), ``started_by``, ``findings`` (the workers' findings, kept when a run stops early), ``usage`` {``input_tokens``, ``output_tokens``, ``model_calls``, ``cost_usd``}, ``timings``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update

from agentmesh.core.exceptions import NotFoundError, RunFenced
from agentmesh.persistence import audit
from agentmesh.persistence.database import utcnow
from agentmesh.persistence.owner import check_owner, fenced_message
from agentmesh.persistence.tables import model_calls, runs, steps

__all__ = [
    "create_run", "flow_run_url", "prefect_ui_url", "find_run", "get_run", "list_runs", "list_steps", "run_result", "runs_listing", "update_run",
    "usage_of_run",
]


# -- records ----------------------------------------------------------------------------------------------


def create_run(engine: Engine, **values: Any) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(runs).values(created=now, updated=now, **values))


def update_run(engine: Engine, run_id: str, *, if_owner: str | None = None, **values: Any) -> None:
    """Change the run's record; with ``if_owner``, only while that process owns the run (else ``RunFenced``,
    nothing written: the check is the update's own condition)."""
    query = update(runs).where(runs.c.run_id == run_id)
    if if_owner is not None:
        query = query.where(runs.c.owner == if_owner)
    with engine.begin() as conn:
        done = conn.execute(query.values(updated=utcnow(), **values))
    if if_owner is not None and done.rowcount == 0:
        raise RunFenced(fenced_message(run_id))


def find_run(engine: Engine, run_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
    return dict(row) if row else None


def get_run(engine: Engine, run_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if row is None:
            # Accept a unique prefix, as git does for commits.
            rows = conn.execute(select(runs).where(runs.c.run_id.startswith(run_id))).mappings().all()
            if len(rows) == 1 and len(run_id) >= 4:
                row = rows[0]
    if row is None:
        raise NotFoundError(f"no run {run_id!r}; `agentmesh runs list` shows the runs")
    return dict(row)


def list_runs(engine: Engine, *, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
    query = select(runs).order_by(runs.c.created.desc()).limit(limit)
    if status:
        query = query.where(runs.c.status == status)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def list_steps(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(steps).where(steps.c.run_id == run_id).order_by(steps.c.seq)).mappings()
        return [dict(r) for r in rows]


def start_step(conn: Any, *, run_id: str, step_key: str, if_owner: str | None = None, **values: Any) -> None:
    """Record a step as running (a retried or resumed step starts its row afresh), in the caller's transaction;
    with ``if_owner``, only while that process owns the run (``RunFenced``)."""
    check_owner(conn, run_id, if_owner)
    conn.execute(delete(steps).where(steps.c.run_id == run_id, steps.c.step_key == step_key))
    conn.execute(insert(steps).values(run_id=run_id, step_key=step_key, status="running", started=utcnow(), **values))


def end_step(conn: Any, *, run_id: str, step_key: str, status: str, if_owner: str | None = None) -> None:
    check_owner(conn, run_id, if_owner)
    conn.execute(update(steps).where(steps.c.run_id == run_id, steps.c.step_key == step_key)
                 .values(status=status, ended=utcnow()))


# -- reading a run back -----------------------------------------------------------------------------------


def prefect_ui_url(api_url: str | None) -> str | None:
    """The Prefect UI of an API URL, as Prefect itself derives it (``PREFECT_UI_URL``'s default): a server's
    ``http://host:port/api`` is ``http://host:port``; a Prefect Cloud workspace's API maps to its app page."""
    if not api_url:
        return None
    url = api_url.rstrip("/").replace("://api.prefect.cloud/", "://app.prefect.cloud/")
    url = url.removesuffix("/api").replace("/api/", "/")
    return url.replace("/accounts/", "/account/").replace("/workspaces/", "/workspace/")


def flow_run_url(api_url: str | None, flow_run_id: str | None) -> str | None:
    """The page of a flow run in the Prefect UI; None for Prefect's embedded (ephemeral) server."""
    ui = prefect_ui_url(api_url)
    return f"{ui}/runs/flow-run/{flow_run_id}" if ui and flow_run_id else None



def usage_of_run(engine: Engine, run_id: str) -> dict[str, Any]:
    table = model_calls
    with engine.connect() as conn:
        calls, tokens_in, tokens_out, cost = conn.execute(
            select(func.count(), func.coalesce(func.sum(table.c.input_tokens), 0),
                   func.coalesce(func.sum(table.c.output_tokens), 0), func.coalesce(func.sum(table.c.cost_usd), 0.0))
            .where(table.c.run_id == run_id)
        ).one()
        priced = conn.execute(select(func.count()).where(table.c.run_id == run_id, table.c.cost_usd > 0)).scalar()
    return {"input_tokens": int(tokens_in), "output_tokens": int(tokens_out), "model_calls": int(calls),
            "cost_usd": round(float(cost), 6) if priced or calls == 0 else 0.0}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _call_json(call: audit.ToolCallRecord) -> dict[str, Any]:
    """A call as the run shows it: ``args`` are what it was made with; ``edited`` (``{"by", "asked"}``) names the
    approver who changed them and what the model had asked for."""
    edited = {"by": call.approver, "asked": call.args} if call.edited_args is not None else None
    return {"id": call.tool_call_id, "tool": call.tool, "agent": call.agent, "args": call.effective_args,
            "status": "pending_approval" if call.status == "running" and call.approval == "pending" else call.status,
            "reason": call.reason, "result": call.result, "approval": call.approval, "approver": call.approver,
            "edited": edited, "scope": call.scope}


def run_result(engine: Engine, run_id: str) -> dict[str, Any]:
    run = get_run(engine, run_id)
    calls = audit.list_calls(engine, run["run_id"])
    by_step: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_step.setdefault(call.step_key or "", []).append(_call_json(call))
    steps = []
    for step in list_steps(engine, run["run_id"]):
        # A step's agent runs are journalled as "<step key>#n"; their calls carry the bare step key.
        steps.append({
            "node": step["node"], "agent": step["agent"], "status": step["status"], "started": _iso(step["started"]),
            "ended": _iso(step["ended"]), "prefect_task_run_id": step["prefect_task_run_id"],
            "span_id": step.get("span_id"), "worker": step.get("worker"),
            "tool_calls": by_step.get(step["step_key"], []),
        })
    decision = dict(run["decision"]) if run["decision"] else None
    if decision is not None:
        decision["actions"] = [
            {"tool": c.tool, "args": c.effective_args, "status": c.status, "agent": c.agent}
            for c in calls if c.risk in ("write", "destructive") and c.status == "ok"
        ]
    return {
        "run_id": run["run_id"],
        "flow_run_id": run["flow_run_id"],
        "prefect_api_url": run["prefect_api_url"],
        "flow_run_url": flow_run_url(run["prefect_api_url"], run["flow_run_id"]),
        "trace_id": run.get("trace_id"),
        "goal": run["goal"],
        "graph": run["graph"],
        "status": run["status"],
        "error": run["error"],
        "model": {"name": run["model"], "offline": bool(run["offline"])},
        "deployment": run["deployment"],
        "plan": run["plan"],
        "decision": decision,
        "steps": steps,
        "findings": _findings(engine, run["run_id"]),
        "pending_approvals": [_call_json(c) for c in calls if c.approval == "pending"],
        "usage": run["usage"] or usage_of_run(engine, run["run_id"]),
        "timings": run["timings"] or {},
        "prompt_versions": run["prompt_versions"] or {},
        "scope": run["scope"],
        "started_by": run["started_by"],
        "created": _iso(run["created"]),
        "updated": _iso(run["updated"]),
    }


def _findings(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    from agentmesh.persistence.events import event_log

    return [e["finding"] for e in event_log(engine).read(run_id) if e.get("type") == "finding" and "finding" in e]


def runs_listing(engine: Engine, *, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
    return [
        {"run_id": r["run_id"], "status": r["status"], "goal": r["goal"], "graph": r["graph"],
         "deployment": r["deployment"], "model": r["model"], "started_by": r["started_by"],
         "created": _iso(r["created"])}
        for r in list_runs(engine, limit=limit, status=status)
    ]
