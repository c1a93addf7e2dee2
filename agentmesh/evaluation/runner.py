"""Running an eval: one Prefect flow per eval, each trial a task, trials concurrent within a bound — in this
process (``concurrency`` at once: what a remote model's latency needs), or in ``processes`` worker processes
(Prefect's ``ProcessPoolTaskRunner``, one trial at a time each: what CPU-bound trials need — the offline model,
cassette-free local models — to use every core).

    from agentmesh.evaluation import load_scenarios, run_eval
    report = run_eval(load_scenarios(["ops"]), trials=2)
    report["summary"]["mean_reward"]

Every trial runs in its own copy of the starting world (``agentmesh.evaluation.worlds``), with its own
agentmesh home; the Prefect home stays the one of the caller's settings, so all trials share one Prefect
server. Approvals run in ``auto`` mode (what policy allows is approved) so no trial waits for a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from prefect.utilities.annotations import quote

from agentmesh.core.exceptions import UserError
from agentmesh.core.settings import Settings, get_settings
from agentmesh.evaluation.judge import Judge
from agentmesh.evaluation.scenario import Scenario
from agentmesh.evaluation.scoring import (
    ComponentResult,
    TrialObservation,
    TrialScore,
    aggregate,
    score_trial,
    summarise,
    usage_of,
)
from agentmesh.runtime.components import components
from agentmesh.runtime.prefect import InProcess, configure_prefect, in_process
from agentmesh.runtime.run import arun_goal

__all__ = ["EvalOptions", "ProgressSink", "TrialWorlds", "arun_eval", "cassette_name", "check_cassettes", "run_eval"]

ProgressSink = Callable[[dict[str, Any]], None]
REPORT_VERSION = 1


@dataclasses.dataclass(kw_only=True)
class EvalOptions:
    """How an eval runs."""

    trials: int = 1
    """Trials per scenario, unless the scenario sets its own."""
    concurrency: int = 4
    """Trials running at once in this process."""
    processes: int = 1
    """Above 1: trials run in this many worker processes instead, one at a time each (not with cassettes or a
    ``chat_model``, which live in this process)."""
    settings: Settings | None = None
    """The base settings (model, limits); each trial gets a copy with its own home."""
    chat_model: BaseChatModel | None = None
    """Replaces the configured model for every agent (a test seam, or a benchmark's model)."""
    judge: Judge | None = None
    """The rubric judge; None leaves rubrics not evaluated."""
    cassettes: Path | None = None
    """A folder of vcrpy cassettes, one per trial, with ``record`` or ``replay``."""
    cassette_mode: str | None = None
    """``record`` saves the real model's HTTP exchanges; ``replay`` answers from them with no server."""
    workdir: Path | None = None
    """Where trial homes go (kept); None uses a temporary folder removed at the end."""
    on_progress: ProgressSink | None = None
    """Told after each trial: ``{"done", "total", "scenario", "trial", "reward"}``."""


class TrialWorlds(Protocol):
    """A plug-in's per-trial copies of its domain's state (the ``eval_worlds`` of ``agentmesh.runtime.plugins``)."""

    def fresh(self, scenario: Scenario, label: str) -> tuple[Settings, Any]:
        """A new home holding the scenario's starting state: its settings, and a handle on the state."""
        ...

    def expected_state(self, scenario: Scenario) -> dict[str, Any]:
        """The state view after the scenario's reference actions."""
        ...

    def final_state(self, handle: Any) -> dict[str, Any]:
        """The state view of a trial's state after its goals."""
        ...


def trial_worlds(settings: Settings, root: Path) -> TrialWorlds:
    """The trial worlds of the first enabled plug-in that has them."""
    for plugin in components(settings).plugins:
        if plugin.eval_worlds is not None:
            return plugin.eval_worlds(root, base=settings)  # type: ignore[no-any-return]
    raise UserError("no enabled plug-in provides eval worlds (the sample `operations` plug-in does)")


@dataclasses.dataclass(kw_only=True)
class _TrialResult:
    scenario: Scenario
    index: int
    observation: TrialObservation
    score: TrialScore


@dataclasses.dataclass(kw_only=True)
class _Eval:
    """One eval in progress: what its flow and trial tasks are given (as a quoted parameter) and what they find."""

    scenarios: dict[str, Scenario]
    """By id."""
    worlds: TrialWorlds
    """Where each trial's starting state comes from."""
    options: EvalOptions
    """How the eval runs."""
    settings: Settings
    """The base settings."""
    results: list[_TrialResult] = dataclasses.field(default_factory=list)
    """Trials done so far."""
    flow_run_id: str | None = None
    """The eval's flow run."""
    error: Exception | None = None
    """What stopped the eval, if anything did."""
    mismatches: list[str] = dataclasses.field(default_factory=list)
    """Replayed trials that did not match their cassette."""


def run_eval(scenarios: list[Scenario], **options: Any) -> dict[str, Any]:
    """Synchronous ``arun_eval``."""
    return asyncio.run(arun_eval(scenarios, EvalOptions(**options)))


async def arun_eval(scenarios: list[Scenario], options: EvalOptions | None = None) -> dict[str, Any]:
    """Run every scenario's trials and return the report (see ``agentmesh.evaluation.report``)."""
    options = options or EvalOptions()
    settings = options.settings or get_settings()
    if options.cassette_mode == "replay":
        check_cassettes(scenarios, options)
    configure_prefect(settings)  # before any trial home exists: one Prefect server for the whole eval
    temporary = options.workdir is None
    root = Path(options.workdir or tempfile.mkdtemp(prefix="agentmesh-eval-"))
    root.mkdir(parents=True, exist_ok=True)
    ev = _Eval(scenarios={s.id: s for s in scenarios}, worlds=trial_worlds(settings, root), options=options,
               settings=settings)
    started = time.perf_counter()
    pool = options.processes > 1
    if pool and (options.cassette_mode is not None or options.chat_model is not None):
        raise UserError("--processes runs trials in other processes: not with --record/--replay or a chat_model "
                        "(they live in this process); use --concurrency")
    try:
        flow = _eval_flow()
        if pool:
            from prefect.task_runners import ProcessPoolTaskRunner

            flow = flow.with_options(task_runner=ProcessPoolTaskRunner(max_workers=options.processes))
        await flow(scenario_ids=[s.id for s in scenarios], given=in_process(ev, trials=options.trials), return_state=True)
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    if ev.error is not None:
        raise ev.error
    if ev.mismatches:
        first, count = ev.mismatches[0], len(ev.mismatches)
        raise UserError(f"--replay: {count} trial{'s' if count > 1 else ''} did not match {'their' if count > 1 else 'its'} "
                        f"cassette (first: {first}); the prompts, tools or graph changed since: record again with --record")
    return build_report(scenarios, ev.results, settings=settings, options=options,
                        seconds=time.perf_counter() - started, flow_run_id=ev.flow_run_id)


_flow: Any = None


def _eval_flow() -> Any:
    global _flow
    if _flow is None:
        from prefect import flow

        _flow = flow(name="agentmesh-eval", log_prints=False, persist_result=False, validate_parameters=False)(_eval)
    return _flow


async def _eval(scenario_ids: list[str], given: InProcess) -> str:
    """The eval: expected states first, then every trial as a task, at most ``concurrency`` at once — or, with
    ``processes``, batches of ``concurrency`` trials, each batch a task on the flow's process pool."""
    from prefect.context import FlowRunContext

    ev = given.value
    ctx = FlowRunContext.get()
    ev.flow_run_id = str(ctx.flow_run.id) if ctx and ctx.flow_run else None
    options, factory, scenarios = ev.options, ev.worlds, ev.scenarios
    try:
        # Each scenario's expected state is made once, by its first trial, while other trials run.
        expected: dict[str, asyncio.Future[tuple[dict[str, Any] | None, str | None]]] = {}
        jobs = [(scenarios[sid], i) for sid in scenario_ids for i in range(scenarios[sid].trials or options.trials)]
        pool, recording = options.processes > 1, options.cassette_mode is not None
        size = max(1, options.concurrency) if pool else 1
        batches = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        limit = asyncio.Semaphore(options.processes if pool else 1 if recording else max(1, options.concurrency))
        # What a worker process is sent (pickled): the eval without what lives here (the progress sink, results).
        shipped = dataclasses.replace(ev, options=dataclasses.replace(options, on_progress=None), results=[])
        done = 0

        async def want(scenario: Scenario) -> tuple[dict[str, Any] | None, str | None]:
            if scenario.id not in expected:
                expected[scenario.id] = asyncio.ensure_future(_expected_state(factory, scenario))
            return await expected[scenario.id]

        async def one(batch: list[tuple[Scenario, int]]) -> None:
            nonlocal done
            async with limit:
                items = [(s.id, i, *(await want(s))) for s, i in batch]
                if pool:  # on the flow's process pool; the future is waited for in a thread
                    name = f"{batch[0][0].id}#{batch[0][1] + 1}" + (f" +{len(batch) - 1}" if len(batch) > 1 else "")
                    future = _batch_task().with_options(task_run_name=name).submit(quote(shipped), items)
                    results = await asyncio.to_thread(future.result)
                else:
                    results = await _trials(ev, items)
            for result in results:
                ev.results.append(result)
                done += 1
                if options.on_progress is not None:
                    with contextlib.suppress(Exception):
                        options.on_progress({"done": done, "total": len(jobs), "scenario": result.scenario.id,
                                             "trial": result.index + 1, "reward": result.score.reward})

        await asyncio.gather(*(one(b) for b in batches))
        await _summary_artifact(scenario_ids, ev)
    except Exception as exc:
        ev.error = exc
        raise
    return "done"


def _batch_task() -> Any:
    from prefect import task
    from prefect.cache_policies import NONE

    return task(name="trials", tags=["agentmesh", "eval"], cache_policy=NONE, persist_result=False, retries=0)(_trials)


async def _trials(ev: _Eval, items: list[tuple[str, int, dict[str, Any] | None, str | None]]) -> list[_TrialResult]:
    """Trials at once, each a task."""
    from prefect import task
    from prefect.cache_policies import NONE

    components(ev.settings)  # plug-ins and tools loaded once in this process, before the trials share them

    trial_task = task(name="trial", tags=["agentmesh", "eval"], cache_policy=NONE, persist_result=False,
                      retries=0)(_trial)
    return list(await asyncio.gather(*(
        # quote(): Prefect must not walk the eval
        trial_task.with_options(task_run_name=f"{sid}#{index + 1}")(quote(ev), sid, index, want, why)  # type: ignore[call-overload]
        for sid, index, want, why in items)))


async def _expected_state(factory: TrialWorlds, scenario: Scenario) -> tuple[dict[str, Any] | None, str | None]:
    if scenario.evaluation.state is None:
        return None, None
    try:
        return await asyncio.to_thread(factory.expected_state, scenario), None
    except Exception as exc:  # a reference action the world refuses: that scenario's state is not evaluated
        return None, f"{type(exc).__name__}: {exc}"


async def _trial(ev: _Eval, scenario_id: str, index: int, expected: dict[str, Any] | None,
                 expected_error: str | None) -> _TrialResult:
    scenario, options, factory = ev.scenarios[scenario_id], ev.options, ev.worlds
    obs = TrialObservation(expected_state=expected, expected_error=expected_error or (
        None if expected is not None or scenario.evaluation.state is None else "not computed"))
    started = time.perf_counter()
    try:
        settings, world = await asyncio.to_thread(factory.fresh, scenario, f"{scenario.id}-{index + 1}")
        context: list[str] = []
        with _cassette(options, scenario, index) as cassette:
            for goal in scenario.goals:
                run = await arun_goal(goal, graph=scenario.graph, settings=settings, approvals="auto",
                                      chat_model=options.chat_model, context=list(context) or None)
                obs.runs.append(run)
                decision = run.get("decision") or {}
                context += [f"user: {goal}", f"decision: {decision.get('summary', run.get('status'))}"]
        if options.cassette_mode == "replay" and cassette is not None:
            _check_replayed(cassette, obs.runs, f"{scenario.id}#{index + 1}", ev)
        obs.final_state = await asyncio.to_thread(factory.final_state, world)
    except Exception as exc:  # a crash is a scored failure of this trial, never the end of the eval
        obs.error = f"{type(exc).__name__}: {exc}"[:500]
    obs.seconds = round(sum((r.get("timings") or {}).get("wall_s", 0) for r in obs.runs)
                        or time.perf_counter() - started, 3)
    if scenario.evaluation.rubric and options.judge is not None and obs.decision:
        try:
            obs.judge = await options.judge.grade(scenario, obs)
        except Exception as exc:
            obs.judge = ComponentResult(status="not_evaluated", reason=f"the judge failed: {exc}"[:300])
    return _TrialResult(scenario=scenario, index=index, observation=obs, score=score_trial(scenario, obs))


@contextlib.contextmanager
def _cassette(options: EvalOptions, scenario: Scenario, index: int):  # type: ignore[no-untyped-def]
    if options.cassette_mode is None or options.cassettes is None:
        yield None
        return
    import vcr

    recorder = vcr.VCR(
        cassette_library_dir=str(options.cassettes), match_on=["method", "path", "turn"],
        filter_headers=["authorization", "api-key", "openai-organization", "cookie"],
        before_record_request=_model_requests_only, before_record_response=_without_account_headers,
        decode_compressed_response=True,
        record_mode="all" if options.cassette_mode == "record" else "none",
    )
    recorder.register_matcher("turn", _same_turn)
    with recorder.use_cassette(cassette_name(scenario, index), allow_playback_repeats=False) as cassette:
        yield cassette


def _check_replayed(cassette: Any, runs: list[dict[str, Any]], trial: str, ev: _Eval) -> None:
    """A replay that asked for a request its cassette does not hold, or left recorded ones unasked, is not a
    score of the model: the prompts, tools or graph changed since the recording."""
    unmatched = next((r["error"] for r in runs if "CannotOverwriteExistingCassetteException" in (r.get("error") or "")),
                     None)
    if unmatched is None and cassette.all_played:
        return
    why = ("a model request the cassette does not hold" if unmatched else
           f"{len(cassette.responses) - cassette.play_count} recorded model requests never asked")
    ev.mismatches.append(f"{trial}: {why}")
    raise RuntimeError(f"the replay diverged from its cassette: {why}")


def check_cassettes(scenarios: list[Scenario], options: EvalOptions) -> None:
    """Raise ``UserError`` naming the first trial with no cassette to replay."""
    folder = Path(options.cassettes or ".")
    missing = [cassette_name(s, i) for s in scenarios for i in range(s.trials or options.trials)
               if not (folder / cassette_name(s, i)).is_file()]
    if missing:
        raise UserError(f"--replay: no cassette {folder / missing[0]}"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                        + "; record the trials first with --record")


def _model_requests_only(request: Any) -> Any:
    # Prefect's own API traffic (its local server) passes through: a cassette holds the model's requests only.
    return request if request.path.rstrip("/").endswith("/chat/completions") else None


def _without_account_headers(response: dict[str, Any]) -> dict[str, Any]:
    # Endpoints answer with the account's organisation and project and with cookies: not for a committed file.
    headers = response.get("headers") or {}
    for name in [h for h in headers if h.lower() in ("openai-organization", "openai-project", "set-cookie")]:
        del headers[name]
    return response


def _turn(request: Any) -> tuple[Any, ...]:
    """Which agent, in which step, at which turn: parallel steps ask in any order, and each gets its own answer.
    The step input's lines are compared as a set, as parallel steps' actions reach it in either order; later
    messages (tool results, with their times and ids) are left out: they follow from the answers."""
    try:
        messages = json.loads(request.body or b"{}").get("messages") or []
    except ValueError:
        return ()
    system, step = (next((str(m.get("content")) for m in messages if m.get("role") == role), "")
                    for role in ("system", "user"))
    return system, sorted(step.splitlines()), len(messages)


def _same_turn(r1: Any, r2: Any) -> bool:
    return _turn(r1) == _turn(r2)


def cassette_name(scenario: Scenario, index: int) -> str:
    """The cassette file of one trial, inside the cassette folder."""
    return f"{scenario.id}-{index + 1}.yaml"


async def _summary_artifact(scenario_ids: list[str], ev: _Eval) -> None:
    from prefect.artifacts import acreate_markdown_artifact

    by: dict[str, list[_TrialResult]] = {}
    for r in ev.results:
        by.setdefault(r.scenario.id, []).append(r)
    rows = ["| scenario | reward | trials passed | failed components |", "|---|---|---|---|"]
    total = 0.0
    for sid in scenario_ids:
        results = by.get(sid, [])
        reward = sum(r.score.reward for r in results) / max(1, len(results))
        total += reward
        failed = sorted({f["component"] for r in results for f in r.score.failures})
        rows.append(f"| {sid} | {reward:.2f} | {sum(r.score.success for r in results)}/{len(results)} | "
                    f"{', '.join(failed) or '—'} |")
    mean = total / max(1, len(scenario_ids))
    with contextlib.suppress(Exception):  # the artifact is a view; the report is the record
        await acreate_markdown_artifact(key="eval-summary", markdown=f"# Eval summary\n\n**Mean reward:** {mean:.3f} "
                                        f"over {len(scenario_ids)} scenarios\n\n" + "\n".join(rows),
                                        description="agentmesh eval: reward per scenario")


# -- the report --------------------------------------------------------------------------------------------------


def _trajectory(run: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for step in run.get("steps") or []:
        calls = [{"tool": c["tool"], "args": c.get("args"), "status": c.get("status"), "reason": c.get("reason")}
                 for c in step.get("tool_calls") or []]
        if calls or step.get("agent"):
            out.append({"node": step.get("node"), "agent": step.get("agent"), "status": step.get("status"),
                        "calls": calls})
    return out


_DECISION_KEYS = ("summary", "rationale", "outcome", "confidence", "open_risks")


def _trial_json(r: _TrialResult) -> dict[str, Any]:
    """One trial in the report: its scores, and the run and decision they were scored on (the decision's summary,
    rationale and open risks are the text ``communicate`` reads)."""
    obs = r.observation
    decision = obs.decision or {}
    return {
        "trial": r.index + 1,
        "run_id": obs.runs[-1].get("run_id") if obs.runs else None,
        "decision": {k: decision.get(k) for k in _DECISION_KEYS} if decision else None,
        "reward": r.score.reward,
        "success": r.score.success,
        "components": {k: {"status": v.status, "reason": v.reason} for k, v in r.score.components.items()},
        "failures": r.score.failures,
        "error": obs.error,
        "seconds": obs.seconds,
        "usage": usage_of(obs.runs),
        "runs": [{
            "run_id": run.get("run_id"), "goal": run.get("goal"), "status": run.get("status"), "error": run.get("error"),
            "model": (run.get("model") or {}).get("name"),
            "decision": {k: decision_of(run).get(k) for k in _DECISION_KEYS},
            "trajectory": _trajectory(run),
        } for run in obs.runs],
        "outcome": decision.get("outcome"),
    }


def decision_of(run: dict[str, Any]) -> dict[str, Any]:
    return run.get("decision") or {}


def build_report(scenarios: list[Scenario], results: list[_TrialResult], *, settings: Settings,
                 options: EvalOptions, seconds: float, flow_run_id: str | None = None) -> dict[str, Any]:
    """The report JSON: ``scenarios`` (one entry each) and ``summary``."""
    by: dict[str, list[_TrialResult]] = {}
    for r in results:
        by.setdefault(r.scenario.id, []).append(r)
    entries = []
    for s in scenarios:
        trials = sorted(by.get(s.id, []), key=lambda r: r.index)
        agg = aggregate([r.score for r in trials])
        usage = usage_of([run for r in trials for run in r.observation.runs])
        entries.append({
            "id": s.id, "suite": s.suite, "purpose": s.purpose, "tags": s.tags, "graph": s.graph,
            "goal": s.goal or " → ".join(s.turns), "source": s.source, "reward_basis": s.evaluation.basis(),
            **agg,
            "failures": [{"trial": r.index + 1, **f} for r in trials for f in r.score.failures],
            "usage": usage, "seconds": round(sum(r.observation.seconds for r in trials), 3),
            "trial_results": [_trial_json(r) for r in trials],
        })
    summary = summarise(entries)
    usage = usage_of([run for r in results for run in r.observation.runs])
    model = getattr(options.chat_model, "model_name", None) if options.chat_model is not None else settings.model_name
    summary.update({
        "input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
        "tokens": usage["input_tokens"] + usage["output_tokens"], "model_calls": usage["model_calls"],
        "cost_usd": usage["cost_usd"], "seconds": round(seconds, 2),
        "suites": sorted({s.suite for s in scenarios}),
    })
    return {
        "version": REPORT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model,
        "offline": model == "offline",
        "judge": options.judge.name if options.judge else None,
        "trials": options.trials,
        "prefect_flow_run_id": flow_run_id,
        "summary": summary,
        "scenarios": entries,
    }
