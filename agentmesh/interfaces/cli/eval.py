"""`agentmesh eval run | compare | validate`.

Exit codes: 0 the gate passed, 1 the gate failed, 2 a bad scenario file or bad usage (one line, ``file:line``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

eval_app = typer.Typer(help="Run eval suites, compare reports, validate scenario files.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()


@eval_app.command("run")
def run(
    paths: Annotated[list[str], typer.Argument(help="Scenario files, folders, or bundled suites (ops, data, support, safety).")],
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, max=50, help="Trials per scenario.")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=64, help="Trials at once.")] = 4,
    processes: Annotated[int, typer.Option("--processes", "-p", min=1, max=64, help="Run trials in this many worker processes, one at a time each (uses every core for CPU-bound trials, e.g. the offline model).")] = 1,
    model: Annotated[str | None, typer.Option("--model", "-m", help="offline, or an OpenAI-compatible model name.")] = None,
    tags: Annotated[list[str] | None, typer.Option("--tags", "-t", help="Only scenarios with this tag or suite (repeatable, or comma-separated).")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", "-o", help="Write the report JSON here.")] = None,
    brief: Annotated[bool, typer.Option("--brief", help="Leave per-trial details out of --out (a baseline to commit).")] = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="A report to compare with and gate on.")] = None,
    fail_under: Annotated[float | None, typer.Option("--fail-under", help="Fail when the mean reward is below this.")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="How far below the baseline's mean reward still passes.")] = 0.05,
    judge_model: Annotated[str | None, typer.Option("--judge-model", help="A model that grades rubrics (else they are not evaluated).")] = None,
    record: Annotated[bool, typer.Option("--record", help="Save vcrpy cassettes of the model's HTTP exchanges, one per trial (trials run one at a time).")] = False,
    replay: Annotated[bool, typer.Option("--replay", help="Answer the model's requests from saved cassettes; no endpoint is reached.")] = False,
    cassettes: Annotated[Path, typer.Option("--cassettes", help="The cassette folder for --record / --replay.")] = Path("evals-cassettes"),
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Keep trial worlds here (default: a temporary folder).")] = None,
) -> None:
    """Run scenarios, print the scores, write reports, and gate on a baseline."""
    from agentmesh.core.exceptions import UserError
    from agentmesh.core.settings import get_settings
    from agentmesh.evaluation import (
        EvalOptions,
        arun_eval,
        compare,
        gate,
        judge_from_settings,
        load_scenarios,
    )
    from agentmesh.evaluation.report import load_report, write_html, write_junit, write_report

    if record and replay:
        raise UserError("--record and --replay exclude each other")
    wanted = [t.strip() for group in tags or [] for t in group.split(",") if t.strip()]
    scenarios = load_scenarios(list(paths), tags=wanted or None)
    if not scenarios:
        raise UserError("no scenario matched" + (f" the tags {', '.join(wanted)}" if wanted else ""))
    overrides = {"model": model}
    if replay and model and model != "offline":
        import os

        os.environ.setdefault("OPENAI_API_KEY", "replay")  # cassettes answer; no key is sent anywhere
    settings = get_settings(**overrides)
    if (record or replay) and settings.offline:
        raise UserError(f"--{'record' if record else 'replay'} needs an OpenAI-compatible model (--model NAME and "
                        "OPENAI_API_KEY): the offline model sends no HTTP requests to record or replay")
    old = load_report(baseline) if baseline else None
    if processes > 1 and (record or replay):
        raise UserError("--processes and --record/--replay exclude each other: cassettes are written in this process")
    options = EvalOptions(trials=trials, concurrency=concurrency, processes=processes, settings=settings,
                          judge=judge_from_settings(settings, judge_model), workdir=workdir,
                          cassettes=cassettes if record or replay else None,
                          cassette_mode="record" if record else "replay" if replay else None)
    if replay:
        from agentmesh.evaluation.runner import check_cassettes

        check_cassettes(scenarios, options)
    total = sum(s.trials or trials for s in scenarios)
    label = f"{settings.model_name}{' (offline model)' if settings.offline else ''}"
    at_once = f"{processes} processes" if processes > 1 else f"{concurrency} at once"
    err.print(f"eval: {len(scenarios)} scenarios × trials = {total} trials on {label}, {at_once}")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[last]}"), console=err, transient=False) as progress:
        bar = progress.add_task("trials", total=total, last="")

        def tick(event: dict) -> None:
            mark = "✓" if event["reward"] >= 1 else "✗"
            progress.update(bar, completed=event["done"], last=f"{mark} {event['scenario']}#{event['trial']}")

        options.on_progress = tick
        report = asyncio.run(arun_eval(scenarios, options))
    comparison = compare(old, report) if old else None
    if out_path:
        write_report(report, out_path, brief=brief)
    if junit:
        write_junit(report, junit)
    if html:
        write_html(report, html, comparison=comparison)
    _print_report(report, comparison)
    passed, reasons = gate(report, baseline=old, fail_under=fail_under, tolerance=tolerance)
    for reason in reasons:
        err.print(f"[red]gate failed:[/] {reason}", highlight=False)
    if not passed:
        raise typer.Exit(1)
    if baseline or fail_under is not None:
        err.print("[green]gate passed[/]")


def _print_report(report: dict, comparison: dict | None) -> None:
    deltas = {r["id"]: r for r in (comparison or {}).get("scenarios", [])}
    table = Table(title=f"eval · {report['model']}", show_lines=False)
    for column in ("scenario", "reward", "pass^k", "failed components"):
        table.add_column(column)
    if comparison:
        table.add_column("vs baseline")
    for s in report["scenarios"]:
        failed = sorted({f["component"] for f in s["failures"]})
        hat = " ".join(f"{k}:{v:.2f}" for k, v in s["pass_hat_k"].items())
        color = "green" if s["reward"] >= 1 else "red" if s["reward"] <= 0 else "yellow"
        row = [s["id"], f"[{color}]{s['reward']:.2f}[/]", hat, ", ".join(failed) or "—"]
        if comparison:
            d = deltas.get(s["id"], {})
            row.append(d.get("change", "") + (f" {d['delta']:+.2f}" if d.get("delta") else ""))
        table.add_row(*row)
    out.print(table)
    summary = report["summary"]
    hat = ", ".join(f"pass^{k} {v:.3f}" for k, v in summary["pass_hat_k"].items())
    at = ", ".join(f"pass@{k} {v:.3f}" for k, v in summary["pass_at_k"].items())
    line = (f"mean reward {summary['mean_reward']:.3f} · {hat} · {at} · {summary['tokens']:,} tokens · "
            f"${summary['cost_usd']:.4f} · {summary['seconds']} s")
    if comparison:
        line += f" · baseline {comparison['summary']['mean_reward']['before']:.3f}"
    out.print(line, highlight=False)


@eval_app.command("compare")
def compare_cmd(
    before: Annotated[Path, typer.Argument(help="The earlier report (e.g. the baseline).")],
    after: Annotated[Path, typer.Argument(help="The newer report.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
) -> None:
    """Show per-scenario reward changes between two reports."""
    from agentmesh.evaluation import compare
    from agentmesh.evaluation.report import load_report

    result = compare(load_report(before), load_report(after))
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    table = Table(title=f"{before} → {after}")
    for column in ("scenario", "before", "after", "change", "why (after)"):
        table.add_column(column)
    styles = {"improved": "green", "regressed": "red", "new": "cyan", "removed": "magenta", "same": "dim"}
    for r in result["scenarios"]:
        fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
        why = "; ".join(f"{f['component']}: {f['reason'][:80]}" for f in r["failures"][:2])
        table.add_row(r["id"], fmt(r["before"]), fmt(r["after"]), f"[{styles[r['change']]}]{r['change']}[/]", why)
    out.print(table)
    m = result["summary"]["mean_reward"]
    counts = ", ".join(f"{n} {c}" for c, n in result["summary"]["counts"].items() if n)
    out.print(f"mean reward {m['before']:.3f} → {m['after']:.3f} ({m['delta']:+.3f}); {counts}", highlight=False)


@eval_app.command("validate")
def validate(
    paths: Annotated[list[str], typer.Argument(help="Scenario files, folders, or bundled suites.")],
) -> None:
    """Check scenario files against the schema; the first bad file is reported as file:line."""
    from agentmesh.evaluation import load_scenarios

    scenarios = load_scenarios(list(paths))
    suites: dict[str, int] = {}
    for s in scenarios:
        suites[s.suite] = suites.get(s.suite, 0) + 1
    out.print(f"{len(scenarios)} scenarios valid: " + ", ".join(f"{k} {v}" for k, v in sorted(suites.items())),
              highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
