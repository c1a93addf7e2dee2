"""The report of an evolution round: JSON, a self-contained HTML page, Prefect artifacts and a database row.

The round JSON: ``round_id, round, role, suite, model, offline, trials, split, statistics, baseline
{version, train, held_out, failures}, outcome (promoted | pending_approval | kept), summary, version,
baseline_version, approval_run_id, candidates [{version, instruction, settings, rationale, train {pass_hat_k,
per_scenario, test}, held_out {…}, decision, why, approval_run_id}]``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from agentmesh.persistence.database import utcnow
from agentmesh.persistence.tables import evolution_rounds

__all__ = ["list_rounds", "publish", "render_html"]

_TEMPLATE = Path(__file__).with_name("report.html.j2")


def render_html(report: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_TEMPLATE.read_text(encoding="utf-8")).render(r=report)


def _markdown(report: dict[str, Any]) -> str:
    rows = ["| version | decision | train pass^k | held-out pass^k | better/worse/tied | p |", "|---|---|---|---|---|---|",
            f"| v{report['baseline']['version']} (current) | — | {report['baseline']['train']['pass_hat_k']} | "
            f"{report['baseline']['held_out']['pass_hat_k']} | — | — |"]
    for c in report["candidates"]:
        t = c["train"]["test"]
        rows.append(f"| v{c['version']} | {c['decision']} | {c['train']['pass_hat_k']} | {c['held_out']['pass_hat_k']} | "
                    f"{t['wins']}/{t['losses']}/{t['ties']} | {t['p_value']:.4g} |")
    why = "\n".join(f"- **v{c['version']}** ({c['decision']}): {'settings: ' if c.get('settings') else ''}"
                    f"{c['instruction']}\n  - why: {c['why']}" for c in report["candidates"])
    return (f"# Evolution round {report['round']}: {report['role']} — {report['outcome']}\n\n{report['summary']}\n\n"
            f"**Test:** {report['statistics']['test']}, α = {report['statistics']['alpha']} / "
            f"{report['statistics']['candidates']} candidates; held-out: {len(report['split']['held_out'])} scenarios "
            f"must not regress.\n\n" + "\n".join(rows) + "\n\n" + why + "\n")


async def publish(engine: Engine, report: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Write the round's JSON and HTML under ``folder``, add Prefect artifacts, record the round."""
    from prefect.context import FlowRunContext

    folder.mkdir(parents=True, exist_ok=True)
    stem = f"evolution-{report['role']}-{report['round_id']}"
    html = folder / f"{stem}.html"
    html.write_text(render_html(report), encoding="utf-8")
    (folder / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    report["html"] = str(html)
    ctx = FlowRunContext.get()
    with contextlib.suppress(Exception):  # artifacts are a view; the database row is the record
        from prefect.artifacts import acreate_markdown_artifact

        await acreate_markdown_artifact(key=f"evolution-{report['role']}", markdown=_markdown(report),
                                        description=f"agentmesh evolve: round {report['round']} of {report['role']}")
    with engine.begin() as conn:
        conn.execute(insert(evolution_rounds).values(
            round_id=report["round_id"], role=report["role"], suite=report["suite"], decision=report["outcome"],
            report=json.loads(json.dumps(report, default=str)), html_path=str(html),
            flow_run_id=str(ctx.flow_run.id) if ctx and ctx.flow_run else None, created=utcnow()))
    return report


def list_rounds(engine: Engine, role: str | None = None) -> list[dict[str, Any]]:
    query = select(evolution_rounds).order_by(evolution_rounds.c.created)
    if role:
        query = query.where(evolution_rounds.c.role == role)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
