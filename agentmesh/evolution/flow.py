"""The ``agentmesh-evolve`` Prefect flow: one evolution (one or more rounds) per flow run, runnable in-process
(`agentmesh evolve`) or as a scheduled deployment (`agentmesh evolve --schedule CRON`).

    from agentmesh.evolution import EvolutionOptions, evolve
    rounds = evolve(["evals/support"], EvolutionOptions(role="optimizer", candidates=2, trials=2))
    rounds[-1]["outcome"]          # promoted | pending_approval | kept

A scheduled run never promotes without the same evidence, and with ``require_approval`` only starts a
``prompt_promotion`` run whose ``promote_prompt`` call waits for `agentmesh approve RUN_ID`, as any tool call
needing approval does (`rounds[-1]["approval_run_id"]`).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict, replace
from typing import Any

from prefect import flow

from agentmesh.core.exceptions import UserError
from agentmesh.core.settings import get_settings
from agentmesh.evaluation import load_scenarios
from agentmesh.evolution.graph import EvolutionOptions, build_graph, make_context
from agentmesh.runtime.compile import compile as durable_compile
from agentmesh.runtime.prefect import InProcess, configure_prefect, in_process

__all__ = ["FLOW_NAME", "aevolve", "create_deployment", "evolve", "evolve_flow"]

FLOW_NAME = "agentmesh-evolve"
_PLAIN = ("role", "rounds", "candidates", "trials", "concurrency", "held_out", "alpha", "min_delta",
          "held_out_tolerance", "require_approval", "actor")



# A module-level flow, so a deployment's entrypoint (`agentmesh.evolution.flow:evolve_flow`) names it.
@flow(name=FLOW_NAME, log_prints=False, persist_result=False, validate_parameters=False)
async def evolve_flow(suite: list[str], options: dict[str, Any] | None = None,
                      given: InProcess | None = None) -> list[dict[str, Any]]:
    """One evolution: its rounds' reports. In-process callers pass the options that are not plain data (settings,
    a chat model, a proposer) as ``given``; a deployed run has the plain ``options`` and reads the environment."""
    opts = replace(given.value) if given is not None else EvolutionOptions(**(options or {}))
    settings = opts.settings or get_settings()
    scenarios = load_scenarios(list(suite))
    if not scenarios:
        raise UserError(f"no scenarios under {', '.join(suite)}")
    ctx = make_context(scenarios, ", ".join(suite), opts, settings)
    graph = durable_compile(build_graph(ctx), retries=0, settings=settings)
    state = await graph.ainvoke({"role": opts.role} if opts.role else {}, {"recursion_limit": 50 * max(1, opts.rounds)})
    return state.get("reports", [])


def _validate(options: EvolutionOptions) -> None:
    if options.rounds < 1 or options.candidates < 1 or options.trials < 1:
        raise UserError("--rounds, --candidates and --trials must be at least 1")
    if not 0 <= options.held_out < 1:
        raise UserError("--held-out must be a fraction in [0, 1)")
    if not 0 < options.alpha < 1:
        raise UserError("--alpha must be in (0, 1)")


async def aevolve(suite: list[str], options: EvolutionOptions | None = None) -> list[dict[str, Any]]:
    """Run an evolution in this process as one ``agentmesh-evolve`` flow run; returns the rounds' reports."""
    options = options or EvolutionOptions()
    _validate(options)
    settings = options.settings or get_settings()
    configure_prefect(settings)
    load_scenarios(list(suite))  # a bad suite is a one-line error before Prefect starts
    given = in_process(replace(options, settings=settings), role=options.role, rounds=options.rounds)
    state = await evolve_flow(suite=list(suite), given=given, return_state=True)
    return await state.result()  # type: ignore[misc]  # Prefect types the flow, not its state


def evolve(suite: list[str], options: EvolutionOptions | None = None) -> list[dict[str, Any]]:
    """Synchronous ``aevolve``."""
    return asyncio.run(aevolve(suite, options))


async def create_deployment(name: str, *, suite: list[str], cron: str, options: EvolutionOptions,
                            work_pool: str | None = None) -> str:
    """A scheduled evolution (e.g. nightly against the latest suite); `agentmesh deploy --serve` or a worker
    runs it. Returns the deployment id."""
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.deployments.runner import EntrypointType

    if not os.environ.get("PREFECT_API_URL"):
        raise UserError("scheduling needs a Prefect server: leave AGENTMESH_PREFECT=local or set PREFECT_API_URL")
    _validate(options)
    try:
        CronSchedule(cron=cron)
    except ValueError:
        raise UserError(f"--schedule {cron!r} is not a cron expression: five fields, minute hour day-of-month "
                            "month day-of-week, e.g. '*/15 * * * *' (every 15 minutes)") from None
    load_scenarios(list(suite))
    plain = {k: v for k, v in asdict(replace(options, settings=None, chat_model=None, proposer=None)).items()
             if k in _PLAIN}
    deployment = await evolve_flow.ato_deployment(
        name=name, cron=cron, parameters={"suite": [str(s) for s in suite], "options": plain},
        entrypoint_type=EntrypointType.MODULE_PATH, tags=["agentmesh", "evolve"],
        description=f"agentmesh evolve {' '.join(map(str, suite))} ({options.role or 'role from failures'})")
    if work_pool:
        deployment.work_pool_name = work_pool
    return str(await deployment.apply())  # type: ignore[misc]  # Prefect's sync/async dispatch
