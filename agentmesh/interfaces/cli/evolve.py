"""`agentmesh evolve`: propose, evaluate and (on evidence) promote prompt and settings changes; or schedule that."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True, soft_wrap=True)


def evolve(
    suite: Annotated[list[Path], typer.Option("--suite", help="An eval suite folder or scenario file (repeatable).")],
    agent: Annotated[str | None, typer.Option("--agent", help="The role whose prompt evolves; default: the one the failures point at.")] = None,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Rounds at most (a round that promotes nothing ends it).")] = 1,
    candidates: Annotated[int, typer.Option("--candidates", min=1, help="Candidates per round.")] = 2,
    trials: Annotated[int, typer.Option("--trials", min=1, help="Trials per scenario and version.")] = 1,
    held_out: Annotated[float, typer.Option("--held-out", help="Fraction of scenarios held out (by id hash).")] = 0.3,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level of the sign test, over all candidates.")] = 0.05,
    require_approval: Annotated[bool, typer.Option("--require-approval", help="A promotion waits for a person: `agentmesh approve RUN_ID`.")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Trials at once per evaluation.")] = 4,
    model: Annotated[str | None, typer.Option("--model", "-m", help="offline, or an OpenAI-compatible model name.")] = None,
    schedule: Annotated[str | None, typer.Option("--schedule", help="Instead of running now, deploy on this cron schedule.")] = None,
    name: Annotated[str, typer.Option("--name", help="With --schedule: the deployment's name.")] = "nightly-evolve",
    work_pool: Annotated[str | None, typer.Option("--work-pool", help="With --schedule: a work pool whose workers run it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rounds' reports as JSON.")] = False,
) -> None:
    """Evolve an agent's prompt and settings against an eval suite: promote a candidate only when it beats the current version."""
    from agentmesh.core.settings import get_settings
    from agentmesh.evaluation import load_scenarios
    from agentmesh.evolution.flow import aevolve, create_deployment
    from agentmesh.evolution.graph import EvolutionOptions
    from agentmesh.runtime.prefect import configure_prefect

    load_scenarios([str(s) for s in suite])  # a wrong suite is one line now, before any Prefect server
    settings = get_settings(model=model)
    options = EvolutionOptions(role=agent, rounds=rounds, candidates=candidates, trials=trials, held_out=held_out,
                               alpha=alpha, require_approval=require_approval, concurrency=concurrency,
                               settings=settings, actor=f"evolution (started by {getpass.getuser()})")
    if schedule:
        configure_prefect(settings)
        ident = asyncio.run(create_deployment(name, suite=[str(s) for s in suite], cron=schedule, options=options,
                                              work_pool=work_pool))
        out.print(f"deployment {name} ({ident}) of flow agentmesh-evolve on cron {schedule!r}; "
                  f"`agentmesh deploy --serve {name}` runs it" + (" (workers of pool " + work_pool + ")" if work_pool else ""))
        return
    reports = asyncio.run(aevolve([str(s) for s in suite], options))
    if as_json:
        sys.stdout.write(json.dumps(reports, indent=2, default=str) + "\n")
        return
    if settings.offline:
        err.print("[dim]model: offline — its scores are a regression signal for the machinery, not decision quality[/]")
    for r in reports:
        out.print(f"[bold]round {r['round']}[/] · {r['role']} · v{r['baseline']['version']}: train pass^k "
                  f"{r['baseline']['train']['pass_hat_k']}, held-out {r['baseline']['held_out']['pass_hat_k']}")
        for c in r["candidates"]:
            t = c["train"]["test"]
            change = ("settings " if c.get("settings") else "") + c["instruction"][:90]
            out.print(f"  v{c['version']} [{'green' if c['decision'] == 'promoted' else 'yellow'}]{c['decision']}[/] "
                      f"({change}) train {c['train']['pass_hat_k']} held-out {c['held_out']['pass_hat_k']} · "
                      f"{t['wins']} better/{t['losses']} worse, p = {t['p_value']:.4g} — {c['why']}", highlight=False)
        out.print(f"  → {r['summary']}\n  report: {r['html']}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evolve")(evolve)
