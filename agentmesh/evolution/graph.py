"""The evolution graph: evaluate the current prompt, propose candidates from its failures, evaluate every
candidate (in parallel, one ``Send`` each), decide on the evidence, record and report.

    baseline → propose ⇉ evaluate (one per candidate) → decide → report → (next round | END)

It is an ordinary LangGraph ``StateGraph`` run through ``agentmesh.compile``, so each node is
a Prefect task inside the ``agentmesh-evolve`` flow run, and each evaluation is an ``agentmesh-eval`` flow run
whose trials are tasks. It is kept internal (not in ``graphs/langgraph.json``): its input is a suite and a
role, not a goal in words, and `agentmesh run --graph evolution "…"` would have nothing to parse.
"""

from __future__ import annotations

import asyncio
import operator
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from agentmesh.core.exceptions import RunError
from agentmesh.core.settings import Settings
from agentmesh.evaluation import EvalOptions, Scenario, arun_eval
from agentmesh.evolution.proposals import (
    Candidate,
    ProposalRequest,
    Proposer,
    failures_of,
    model_proposals,
    pick_role,
    rule_proposals,
)
from agentmesh.evolution.statistics import compare_paired, scenario_scores, split_scenarios
from agentmesh.persistence.database import get_engine
from agentmesh.prompts import versions
from agentmesh.prompts.templates import list_roles

__all__ = ["EvolutionOptions", "EvolutionState", "build_graph"]


@dataclass(kw_only=True)
class EvolutionOptions:
    """How an evolution runs."""

    role: str | None = None
    """The role whose prompt evolves; None picks the role the baseline's failures point at."""
    rounds: int = 1
    """Rounds at most; a round that promotes nothing ends the evolution."""
    candidates: int = 2
    """Candidates proposed per round."""
    trials: int = 1
    """Trials per scenario and version (pass^k uses k = trials)."""
    concurrency: int = 4
    """Trials running at once within one evaluation."""
    held_out: float = 0.3
    """Fraction of scenarios (by id hash) held out: promotion needs no regression there."""
    alpha: float = 0.05
    """Significance level of the sign test, split over the candidates of a round (Bonferroni)."""
    min_delta: float = 0.0
    """The mean train pass^k gain a promotion needs beyond a significant test."""
    held_out_tolerance: float = 0.0
    """How far the held-out mean pass^k may fall; 0 means no regression at all."""
    require_approval: bool = False
    """Instead of promoting, start a `prompt_promotion` run that waits for a person (`agentmesh approve RUN_ID`)."""
    settings: Settings | None = None
    """The agentmesh settings whose database holds the prompt versions; trials copy them."""
    chat_model: Any = None
    """Replaces the model in every trial (a test seam, as in `EvalOptions`)."""
    proposer: Proposer | None = None
    """Who proposes candidates; None: rules for the offline model, the configured model otherwise."""
    workdir: Path | None = None
    """Where variant prompt folders, trial homes and reports go; None: ``<home>/evolution``."""
    actor: str = "evolution"
    """Recorded as who decided a promotion or rejection."""


class EvolutionState(TypedDict, total=False):
    round: int
    round_id: str
    role: str
    baseline: dict[str, Any]  # version, text, report
    candidates: list[dict[str, Any]]
    results: Annotated[list[dict[str, Any]], operator.add]
    decision: dict[str, Any]
    reports: Annotated[list[dict[str, Any]], operator.add]


@dataclass(kw_only=True)
class _Context:
    options: EvolutionOptions
    settings: Settings
    scenarios: list[Scenario]
    suite: str
    root: Path
    engine: Any = None
    train: list[str] = field(default_factory=list)
    held_out: list[str] = field(default_factory=list)


def build_graph(ctx: _Context) -> StateGraph:
    """The evolution graph over one suite and its options."""
    graph = StateGraph(EvolutionState)
    graph.add_node("baseline", _node(_baseline, ctx), metadata={"agent": "evolver"})
    graph.add_node("propose", _node(_propose, ctx), metadata={"agent": "evolver"})
    graph.add_node("evaluate", _node(_evaluate, ctx), metadata={"agent": "evolver"})
    graph.add_node("decide", _node(_decide, ctx), metadata={"agent": "evolver"})
    graph.add_node("report", _node(_report, ctx), metadata={"agent": "evolver"})
    graph.add_edge(START, "baseline")
    graph.add_edge("baseline", "propose")
    graph.add_conditional_edges("propose", _fan_out, ["evaluate", "decide"])
    graph.add_edge("evaluate", "decide")
    graph.add_edge("decide", "report")
    graph.add_conditional_edges("report", lambda s: _next_round(s, ctx), ["baseline", END])
    return graph


def _node(fn: Any, ctx: _Context) -> Any:
    async def node(state: Any) -> Any:
        return await fn(state, ctx)

    node.__name__ = fn.__name__.lstrip("_")
    return node


# -- evaluating one version -----------------------------------------------------------------------------


def _variant_folder(ctx: _Context, role: str, label: str, text: str) -> Path:
    """A prompts folder holding every role's current prompt, with ``role`` replaced by ``text``. Trials run in
    their own homes (their own databases), so a version reaches them as a file, never through the database."""
    folder = ctx.root / "variants" / label
    if folder.exists():
        shutil.rmtree(folder)
    user = ctx.settings.prompts_path
    if user and user.is_dir():
        shutil.copytree(user, folder)
    folder.mkdir(parents=True, exist_ok=True)
    for other in list_roles(user):
        if other != role:
            _, _, other_text = versions.current_template(ctx.engine, other, folder=user)
            (folder / f"{other}.md").write_text(other_text, encoding="utf-8")
    (folder / f"{role}.md").write_text(text, encoding="utf-8")
    return folder


async def _evaluate_text(ctx: _Context, role: str, label: str, text: str) -> dict[str, Any]:
    folder = await asyncio.to_thread(_variant_folder, ctx, role, label, text)
    settings = ctx.settings.model_copy(update={"prompts_path": folder})
    settings.__dict__.pop("resolved_home", None)
    options = EvalOptions(trials=ctx.options.trials, concurrency=ctx.options.concurrency, settings=settings,
                          chat_model=ctx.options.chat_model, workdir=ctx.root / "trials" / label)
    try:
        return await arun_eval(ctx.scenarios, options)
    finally:
        shutil.rmtree(ctx.root / "trials" / label, ignore_errors=True)


def _split_summary(report: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    scores = scenario_scores(report, ids)
    rewards = {s["id"]: s["reward"] for s in report["scenarios"] if s["id"] in ids}
    return {"scenarios": len(ids), "pass_hat_k": round(sum(scores.values()) / len(ids), 4) if ids else None,
            "mean_reward": round(sum(rewards.values()) / len(ids), 4) if ids else None,
            "per_scenario": {i: {"pass_hat_k": scores.get(i), "reward": rewards.get(i)} for i in ids}}


# -- nodes ----------------------------------------------------------------------------------------------


async def _baseline(state: EvolutionState, ctx: _Context) -> dict[str, Any]:
    number = state.get("round", 0) + 1
    role = state.get("role") or ctx.options.role
    report = None
    if role is None:  # evaluate with whatever is active, then let the failures pick the role
        probe = "optimizer"
        _, _, text = await asyncio.to_thread(versions.current_template, ctx.engine, probe, folder=ctx.settings.prompts_path)
        report = await _evaluate_text(ctx, probe, f"r{number}-baseline", text)
        role = pick_role(failures_of(report, set(ctx.train))) or probe
    version, _, text = await asyncio.to_thread(versions.current_template, ctx.engine, role,
                                               folder=ctx.settings.prompts_path)
    if report is None:
        report = await _evaluate_text(ctx, role, f"r{number}-v{version}", text)
    return {"round": number, "round_id": uuid.uuid4().hex[:12], "role": role, "candidates": [], "results": [],
            "decision": {}, "baseline": {"version": version, "text": text, "report": report}}


async def _propose(state: EvolutionState, ctx: _Context) -> dict[str, Any]:
    role, base = state["role"], state["baseline"]
    failures = failures_of(base["report"], set(ctx.train))
    proposer = ctx.options.proposer or (rule_proposals if ctx.settings.offline and ctx.options.chat_model is None
                                        else model_proposals)
    request = ProposalRequest(role=role, current=base["text"], failures=failures, count=ctx.options.candidates,
                              settings=ctx.settings)
    found: list[Candidate] = await asyncio.to_thread(proposer, request)
    out = []
    for c in found[: ctx.options.candidates]:
        c.version = versions.add_version(ctx.engine, role, c.text, parent=base["version"], source="evolution",
                                         rationale=c.rationale, round_id=state["round_id"], actor=ctx.options.actor)
        out.append({"version": c.version, "instruction": c.instruction, "settings": c.settings,
                    "rationale": c.rationale, "addresses": c.addresses,
                    "text": versions.get_version(ctx.engine, role, c.version)["text"]})
    return {"candidates": out}


def _fan_out(state: EvolutionState) -> Any:
    if not state["candidates"]:
        return "decide"
    return [Send("evaluate", {**state, "candidates": [c]}) for c in state["candidates"]]


async def _evaluate(state: EvolutionState, ctx: _Context) -> dict[str, Any]:
    (candidate,) = state["candidates"]
    report = await _evaluate_text(ctx, state["role"], f"r{state['round']}-v{candidate['version']}", candidate["text"])
    return {"results": [{"version": candidate["version"], "report": report}]}


async def _decide(state: EvolutionState, ctx: _Context) -> dict[str, Any]:
    opts, role, base = ctx.options, state["role"], state["baseline"]
    reports = {r["version"]: r["report"] for r in state.get("results", [])}
    count = max(1, len(state["candidates"]))
    alpha = opts.alpha / count
    base_train = scenario_scores(base["report"], ctx.train)
    base_held = scenario_scores(base["report"], ctx.held_out)
    rows = []
    for c in state["candidates"]:
        report = reports[c["version"]]
        train = compare_paired(base_train, scenario_scores(report, ctx.train))
        held = compare_paired(base_held, scenario_scores(report, ctx.held_out))
        reasons = []
        if train.p_value > alpha:
            reasons.append(f"train: sign test p = {train.p_value:.4g} > {alpha:.4g} (α {opts.alpha:g} / {count} "
                           f"candidates; {train.wins} better, {train.losses} worse, {train.ties} tied"
                           + (f"; {train.scenarios} scenarios can give at best p = {train.min_p_value:.4g}"
                              if train.min_p_value > alpha else "") + ")")
        if train.delta <= opts.min_delta:
            reasons.append(f"train: mean pass^k {train.baseline_mean:.3f} → {train.candidate_mean:.3f} "
                           f"(needs a gain above {opts.min_delta:g})")
        if ctx.held_out and held.delta < -opts.held_out_tolerance:
            reasons.append(f"held-out: mean pass^k fell {held.baseline_mean:.3f} → {held.candidate_mean:.3f}")
        if ctx.held_out and opts.held_out_tolerance == 0 and held.losses:
            reasons.append(f"held-out: {held.losses} scenario(s) regressed: "
                           + ", ".join(i for i, d in held.deltas.items() if d < 0))
        rows.append({**{k: c[k] for k in ("version", "instruction", "settings", "rationale", "addresses")},
                     "train": {**_split_summary(report, ctx.train), "test": train.as_dict()},
                     "held_out": {**_split_summary(report, ctx.held_out), "test": held.as_dict()},
                     "eligible": not reasons, "reasons": reasons,
                     "eval_flow_run_id": report.get("prefect_flow_run_id")})
    eligible = sorted((r for r in rows if r["eligible"]),
                      key=lambda r: (r["train"]["test"]["p_value"], -r["train"]["test"]["delta"], r["version"]))
    winner = eligible[0] if eligible else None
    evidence_base = {"suite": ctx.suite, "trials": opts.trials, "alpha": opts.alpha, "alpha_per_candidate": alpha,
                     "train": ctx.train, "held_out": ctx.held_out, "baseline_version": base["version"],
                     "round_id": state["round_id"]}
    for r in rows:
        evidence = {**evidence_base, "train": r["train"]["test"], "held_out": r["held_out"]["test"]}
        if winner is not None and r["version"] == winner["version"]:
            r["decision"] = "pending_approval" if opts.require_approval else "promoted"
            why = (f"train pass^k {r['train']['test']['baseline_mean']:.3f} → {r['train']['test']['candidate_mean']:.3f}, "
                   f"sign test p = {r['train']['test']['p_value']:.4g} ≤ {alpha:.4g}; held-out no regression")
            if opts.require_approval:
                versions.set_status(ctx.engine, role, r["version"], "pending_approval", actor=opts.actor,
                                    reason=why + "; awaiting a person's approval", evidence=evidence,
                                    round_id=state["round_id"])
                r["approval_run_id"] = await _request_approval(ctx, role, r["version"], state["round_id"])
                why += f"; awaiting approval: `agentmesh approve {r['approval_run_id']}`"
            else:
                versions.promote(ctx.engine, role, r["version"], actor=f"{opts.actor} (sign test)", reason=why,
                                 evidence=evidence, round_id=state["round_id"])
        else:
            r["decision"] = "rejected"
            why = "; ".join(r["reasons"]) or f"version {winner['version'] if winner else '?'} had stronger evidence"
            versions.set_status(ctx.engine, role, r["version"], "rejected", actor=opts.actor, reason=why,
                                evidence=evidence, round_id=state["round_id"])
        r["why"] = why
    outcome = winner["decision"] if winner else "kept"
    summary = (f"version {winner['version']} " + (f"awaits approval (`agentmesh approve {winner['approval_run_id']}`)"
                                                  if opts.require_approval else "promoted")
               + f" over version {base['version']}" if winner else
               f"kept version {base['version']}: " + ("no candidate was proposed" if not rows else
                                                       "no candidate had the evidence"))
    return {"decision": {"outcome": outcome, "summary": summary, "version": winner["version"] if winner else None,
                         "baseline_version": base["version"], "candidates": rows,
                         "approval_run_id": winner.get("approval_run_id") if winner else None}}


async def _request_approval(ctx: _Context, role: str, version: int, round_id: str) -> str:
    """Start a ``prompt_promotion`` run whose ``promote_prompt`` call (a destructive tool) waits for a person —
    the approval path of any tool call; returns its run id for `agentmesh approve`."""
    from agentmesh.runtime.run import arun_goal

    run = await arun_goal(f"Promote version {version} of the {role} prompt (evolution round {round_id})",
                          graph="prompt_promotion", settings=ctx.settings, approvals="wait")
    if run["status"] != "waiting_approval":
        raise RunError(f"the promotion run {run['run_id']} ended {run['status']} instead of waiting for approval: "
                           f"{run.get('error')}")
    return str(run["run_id"])


async def _report(state: EvolutionState, ctx: _Context) -> dict[str, Any]:
    from agentmesh.evolution.report import publish

    base = state["baseline"]
    report = {
        "round_id": state["round_id"], "round": state["round"], "role": state["role"], "suite": ctx.suite,
        "model": base["report"].get("model"), "offline": base["report"].get("offline"), "trials": ctx.options.trials,
        "split": {"held_out_fraction": ctx.options.held_out, "train": ctx.train, "held_out": ctx.held_out,
                  "rule": "sha256(scenario id) < fraction → held out"},
        "statistics": {"test": "exact one-sided sign test over train scenarios, paired by scenario, on pass^k "
                               f"(k = {ctx.options.trials}); ties dropped",
                       "alpha": ctx.options.alpha, "candidates": len(state["candidates"]),
                       "alpha_per_candidate": ctx.options.alpha / max(1, len(state["candidates"])),
                       "min_delta": ctx.options.min_delta, "held_out_tolerance": ctx.options.held_out_tolerance},
        "baseline": {"version": base["version"], "train": _split_summary(base["report"], ctx.train),
                     "held_out": _split_summary(base["report"], ctx.held_out),
                     "failures": [f.__dict__ for f in failures_of(base["report"], set(ctx.train))][:50],
                     "eval_flow_run_id": base["report"].get("prefect_flow_run_id")},
        **state["decision"],
        "require_approval": ctx.options.require_approval,
    }
    await publish(ctx.engine, report, ctx.root / "reports")
    return {"reports": [report]}


def _next_round(state: EvolutionState, ctx: _Context) -> Any:
    if state["decision"].get("outcome") == "promoted" and state["round"] < ctx.options.rounds:
        return "baseline"
    return END


def make_context(scenarios: list[Scenario], suite: str, options: EvolutionOptions, settings: Settings) -> _Context:
    train, held = split_scenarios(scenarios, held_out=options.held_out)
    root = Path(options.workdir or settings.resolved_home / "evolution")
    root.mkdir(parents=True, exist_ok=True)
    return _Context(options=options, settings=settings, scenarios=scenarios, suite=suite, root=root,
                    engine=get_engine(settings.resolved_database_url), train=[s.id for s in train],
                    held_out=[s.id for s in held])
