"""agentmesh's own cost, side by side with bare LangGraph and bare Prefect, in one run on this machine.

    .venv/bin/python benchmarks/run.py --quick        # `make bench`: under 5 minutes on 2 cores
    .venv/bin/python benchmarks/run.py                # more repeats, more goals

Writes ``benchmarks/results/latest.json`` and ``latest.md`` (the table, with each figure's definition).

Model time is known exactly: every model call goes over HTTP to a local OpenAI-protocol server
(``benchmarks/model_server.py``, a process of its own) that waits a fixed latency before replying — 0 s (the
"instant model") for overheads, 200 ms for the critical path and concurrency. Requests with tools are answered by
the offline model's rules, so a mesh goal runs its usual plan; requests without tools get a short text.

Benchmarks are not tests: nothing here asserts a time; the targets are printed next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CHAIN_DIR = HERE / "chain"
SHORT, LONG = 2, 12  # chain lengths: per node = (t(LONG) - t(SHORT)) / (LONG - SHORT)
GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"
LATENCY_S = 0.2

TARGETS = {
    "overhead_per_node_ms": ("<=", 5),
    "overhead_per_goal_ms": ("<=", 150),
    "critical_path_efficiency": (">=", 0.9),
    "concurrent_32_slowdown": ("<=", 1.5),
    "cold_start_first_event_s": ("<=", 1.5),
    "cold_start_decision_s": ("<=", 3),
    "eval_trials_per_s": (">=", 5),
}

DEFINITIONS = {
    "baseline_langgraph_node_ms": "One node of a line of nodes, each one instant-model call over HTTP, plain LangGraph "
    "(`ainvoke`, no checkpointer, no Prefect): (t(12 nodes) − t(2 nodes)) / 10.",
    "baseline_prefect_task_ms": "The same node when a hand-written `@flow` runs the graph with each node a plain "
    "Prefect `@task` (no agentmesh; same local Prefect server).",
    "overhead_per_node_ms": "agentmesh's node (`arun_goal` on the same graph: Prefect task, step records, events, "
    "checkpoint) minus the bare LangGraph node.",
    "overhead_per_node_traced_ms": "`overhead_per_node_ms` with OpenTelemetry traces on (an `invoke_agent` span per "
    "node, `chat` per model call; the SDK's batch processor, spans encoded as OTLP protobuf and dropped).",
    "overhead_per_goal_ms": "A goal's fixed cost beyond its nodes, instant model, warm process: the intercept "
    "t(2) − 2·node of agentmesh minus that of bare LangGraph (flow run, run record, checkpointer, artifacts).",
    "critical_path_efficiency": "Mesh goal with a plan that has parallel steps, 200 ms per model call: (model time on "
    "the critical path) / (wall time). The critical path counts each strategist call and, for each wave of "
    "parallel workers (a LangGraph superstep), the worker with the most calls.",
    "concurrent_32_slowdown": "Wall time of 32 mesh goals started at once in one process / wall time of one, 200 ms "
    "per model call. `concurrency` holds 1, 8, 32 and 64 goals with throughput and p50/p95 goal latency.",
    "cold_start_first_event_s": "A new `agentmesh run GOAL` process (offline model, the local Prefect server already "
    "running): seconds to its first progress line on stderr.",
    "cold_start_decision_s": "The same process: seconds until the decision is printed.",
    "eval_trials_per_s": "`run_eval` over the bundled `ops` suite, offline model, one trial each, 4 at once, "
    "warm process: trials / wall seconds.",
    "peak_rss_mb": "Peak resident memory of the benchmark process (which ran every in-process figure above).",
}


# -- small helpers ------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def spread(values: list[float], digits: int = 2) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "n": len(values),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@contextlib.contextmanager
def model_server(latency: float, token_delay: float = 0.0) -> Iterator[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "model_server.py"),
            "--latency",
            str(latency),
            "--token-delay",
            str(token_delay),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the benchmark model server did not start")
        yield url
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def load_chain_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_chain", CHAIN_DIR / "chain.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prefect_server_cpu_s() -> float:
    """CPU seconds used so far by the local Prefect server this benchmark runs against (0 if unknown)."""
    from agentmesh.runtime.prefect import local_server_state

    state = local_server_state(Path(os.environ.get("PREFECT_HOME", "")))
    try:
        fields = Path(f"/proc/{state['pid']}/stat").read_text().rsplit(")", 1)[1].split()  # type: ignore[index]
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, TypeError, KeyError, IndexError, ValueError):
        return 0.0


async def timed(make: Callable[[], Awaitable[Any]]) -> tuple[float, float, float]:
    """Wall seconds, this process's CPU seconds, the Prefect server's CPU seconds."""
    cpu, server = time.process_time(), prefect_server_cpu_s()
    started = time.perf_counter()
    await make()
    return time.perf_counter() - started, time.process_time() - cpu, prefect_server_cpu_s() - server


# -- 1. the same graph three ways ---------------------------------------------------------------------------


def prefect_baseline(chain: Any) -> Callable[[int], Awaitable[Any]]:
    """The chain as a plain Prefect user would write it: a flow, each node a task. No agentmesh."""
    from langgraph.graph import END, START, StateGraph
    from prefect import flow, task
    from prefect.cache_policies import NONE

    def build(length: int) -> Any:
        graph = StateGraph(chain.ChainState)
        previous = START
        for index in range(length):
            node_task = task(chain._node(index), name=f"n{index}", cache_policy=NONE, persist_result=False)

            async def node(state: Any, node_task: Any = node_task) -> Any:
                return await node_task(state)

            graph.add_node(f"n{index}", node)
            graph.add_edge(previous, f"n{index}")
            previous = f"n{index}"
        graph.add_edge(previous, END)
        return graph.compile()

    graphs = {SHORT: build(SHORT), LONG: build(LONG)}

    @flow(name="bench-prefect-chain", persist_result=False)
    async def prefect_chain(goal: str, length: int) -> Any:
        return await graphs[length].ainvoke({"goal": goal})

    return lambda length: prefect_chain(goal="count", length=length)


def bench_tracer() -> Any:
    """An OpenTelemetry tracer whose spans go through the SDK's batch processor and are encoded as an OTLP exporter
    encodes them (protobuf), then dropped: what traces cost a goal's process, without a network in the figure."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Encoded(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            encode_spans(spans).SerializeToString()
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Encoded()))
    return provider.get_tracer("agentmesh-bench")


async def bench_layers(settings: Any, repeats: int) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from agentmesh import arun_goal

    chain = load_chain_module()
    bare = {n: chain.chain(n).compile() for n in (SHORT, LONG)}
    saver_path = settings.resolved_home / "bench-checkpoints.sqlite"
    saver_path.parent.mkdir(parents=True, exist_ok=True)
    counter = iter(range(10**9))

    async def with_saver(length: int) -> Any:
        async with AsyncSqliteSaver.from_conn_string(str(saver_path)) as saver:
            graph = chain.chain(length).compile(checkpointer=saver)
            return await graph.ainvoke(
                {"goal": "count"}, {"configurable": {"thread_id": f"t{next(counter)}"}}
            )

    async def agentmesh(length: int) -> Any:
        result = await arun_goal("count", graph=f"bench-chain-{length}", settings=settings)
        assert result["status"] == "done", result.get("error")
        return result

    tracer = bench_tracer()

    async def agentmesh_traced(length: int) -> Any:
        from agentmesh.core import observe

        observe.install(tracer)  # only around these goals: the other variants run with traces off
        try:
            return await agentmesh(length)
        finally:
            observe.install(None)

    variants: dict[str, Callable[[int], Awaitable[Any]]] = {
        "langgraph": lambda n: bare[n].ainvoke({"goal": "count"}),
        "langgraph_checkpointer": with_saver,
        "prefect": prefect_baseline(chain),
        "agentmesh": agentmesh,
        "agentmesh_traced": agentmesh_traced,
    }
    for run in variants.values():  # warm-up: imports, clients, the flow's registration
        for n in (SHORT, LONG):
            await run(n)
    times: dict[str, dict[int, list[tuple[float, float, float]]]] = {
        name: {SHORT: [], LONG: []} for name in variants
    }
    for _ in range(repeats):  # interleaved, so a noisy neighbour hits every variant alike
        for name, run in variants.items():
            for n in (SHORT, LONG):
                times[name][n].append(await timed(lambda run=run, n=n: run(n)))
    out: dict[str, Any] = {}
    for name in variants:
        pairs = list(zip(times[name][SHORT], times[name][LONG], strict=True))
        node = [(b[0] - a[0]) / (LONG - SHORT) * 1000 for a, b in pairs]
        goal = [a[0] * 1000 - SHORT * n for (a, _), n in zip(pairs, node, strict=True)]
        # CPU per node, here and in the Prefect server: what the framework costs when the machine is not idle.
        cpu = [(b[1] - a[1]) / (LONG - SHORT) * 1000 for a, b in pairs]
        server = [(b[2] - a[2]) / (LONG - SHORT) * 1000 for a, b in pairs]
        out[name] = {
            "node_ms": spread(node),
            "goal_fixed_ms": spread(goal),
            f"goal_{LONG}_nodes_ms": spread([b[0] * 1000 for _, b in pairs]),
            "node_cpu_ms": spread(cpu),
            "node_server_cpu_ms": spread(server),
        }
    return out


# -- 2. a mesh goal: instant model (the goal's cost) and 200 ms model (critical path) -------------------------------


def critical_path(settings: Any, run_id: str) -> dict[str, Any]:
    """Model calls on the critical path of a mesh run: strategist calls plus, per wave of parallel workers, the
    largest worker's calls (a wave ends when its slowest worker does: LangGraph supersteps are barriers)."""
    from sqlalchemy import select

    from agentmesh.persistence import runs as store
    from agentmesh.persistence import tables
    from agentmesh.persistence.database import get_engine

    engine = get_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        keys = [
            r[0]
            for r in conn.execute(
                select(tables.model_calls.c.step_key).where(tables.model_calls.c.run_id == run_id)
            )
        ]
    calls: dict[str, int] = {}
    for key in keys:
        step = key.rsplit("#", 1)[0]
        calls[step] = calls.get(step, 0) + 1
    on_path, total, wave, waves, widest = 0, 0, [], 0, 0
    for step in store.list_steps(engine, run_id):
        count = calls.get(step["step_key"], 0)
        total += count
        if step["node"] in ("plan", "review", "decide", "dispatch"):
            if wave:
                on_path += max(wave)
                waves += 1
                widest = max(widest, len(wave))
                wave = []
            on_path += count
        else:
            wave.append(count)
    if wave:
        on_path += max(wave)
        waves += 1
        widest = max(widest, len(wave))
    return {"calls_on_path": on_path, "calls_total": total, "worker_waves": waves, "widest_wave": widest}


async def mesh_goal(settings: Any) -> tuple[float, dict[str, Any]]:
    from agentmesh import arun_goal

    started = time.perf_counter()
    result = await arun_goal(GOAL, settings=settings, approvals="auto")
    seconds = time.perf_counter() - started
    if result["status"] != "done":
        raise RuntimeError(f"mesh goal ended {result['status']}: {result.get('error')}")
    return seconds, result


def reset_world(settings: Any) -> None:
    from agentmesh.plugins.operations.world import World

    World.from_settings(settings).reset()


async def bench_mesh_instant(settings: Any, repeats: int) -> dict[str, Any]:
    walls, cpus, nodes, calls = [], [], [], []
    await mesh_goal(settings)
    for _ in range(repeats):
        reset_world(settings)
        cpu = time.process_time()
        seconds, result = await mesh_goal(settings)
        cpus.append((time.process_time() - cpu) * 1000)
        walls.append(seconds * 1000)
        nodes.append(len(result["steps"]))
        calls.append(critical_path(settings, result["run_id"])["calls_total"])
    return {
        "goal_ms": spread(walls),
        "goal_cpu_ms": spread(cpus),
        "nodes": statistics.median(nodes),
        "model_calls": statistics.median(calls),
    }


PACKAGES = {  # a frame's file -> the layer its time counts in
    "prefect": "Prefect", "langgraph": "LangGraph", "langchain_core": "LangChain + OpenAI client",
    "langchain_openai": "LangChain + OpenAI client", "openai": "LangChain + OpenAI client",
    "httpx": "HTTP (httpx, httpcore)", "httpcore": "HTTP (httpx, httpcore)", "anyio": "HTTP (httpx, httpcore)",
    "sqlalchemy": "SQLite (SQLAlchemy, sqlite3, aiosqlite)", "aiosqlite": "SQLite (SQLAlchemy, sqlite3, aiosqlite)",
    "sqlite3": "SQLite (SQLAlchemy, sqlite3, aiosqlite)", "pydantic": "pydantic", "pydantic_core": "pydantic",
    "jinja2": "agentmesh (agents, prompts, gateway, world)", "duckdb": "agentmesh (agents, prompts, gateway, world)",
    "agentmesh": "agentmesh (agents, prompts, gateway, world)",
}
RUNTIME = "Python runtime (asyncio, json, threads, …)"


def _layer(file_path: str | None) -> str | None:
    for part in reversed(Path(file_path or "").parts):
        if part.removesuffix(".py") in PACKAGES:
            return PACKAGES[part.removesuffix(".py")]
    return None


def _by_layer(frame: Any, inherited: str, into: dict[str, float]) -> None:
    """Sum the sampled time of the call tree's leaves by layer: a leaf outside every package (a built-in, the
    standard library, pyinstrument's "[self]") counts in its caller's layer; waiting (the event loop's poll,
    "[await]", "[idle]") counts nowhere."""
    if frame.function in ("poll", "select") or frame.identifier.startswith(("[await]", "[idle]")):
        return
    layer = _layer(frame.file_path) or inherited
    if not frame.children:
        into[layer] = into.get(layer, 0.0) + frame.time
    for child in frame.children:
        _by_layer(child, layer, into)


async def bench_profile(settings: Any, out: Path) -> dict[str, Any]:
    """Where a warm mesh goal's time goes, by layer (pyinstrument samples), and its call tree."""
    from pyinstrument import Profiler

    await mesh_goal(settings)
    reset_world(settings)
    profiler = Profiler(interval=0.0005, async_mode="enabled")
    cpu = time.process_time()
    profiler.start()
    await mesh_goal(settings)
    profiler.stop()
    cpu_ms = (time.process_time() - cpu) * 1000
    layers: dict[str, float] = {}
    session = profiler.last_session
    if session is not None and (root := session.root_frame()) is not None:
        _by_layer(root, RUNTIME, layers)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile-goal.txt").write_text(profiler.output_text(unicode=False, color=False))
    total = sum(layers.values()) or 1.0
    ordered = sorted(layers.items(), key=lambda kv: -kv[1])
    return {
        "goal_cpu_ms": round(cpu_ms, 1),
        "busy_ms_by_layer": {k: round(v * 1000, 1) for k, v in ordered},
        "share_by_layer": {k: round(v / total, 3) for k, v in ordered},
    }


async def bench_critical_path(settings: Any, repeats: int) -> dict[str, Any]:
    efficiencies, walls, detail = [], [], {}
    for _ in range(repeats):
        reset_world(settings)
        seconds, result = await mesh_goal(settings)
        detail = critical_path(settings, result["run_id"])
        efficiencies.append(detail["calls_on_path"] * LATENCY_S / seconds)
        walls.append(seconds)
    return {
        "efficiency": spread(efficiencies, 3),
        "wall_s": spread(walls, 3),
        "model_s_on_path": round(detail["calls_on_path"] * LATENCY_S, 3),
        **detail,
    }


async def bench_concurrency(settings: Any, sizes: list[int], single_repeats: int) -> dict[str, Any]:
    from agentmesh import arun_goal

    async def one() -> tuple[float, str, int, str | None]:
        started = time.perf_counter()
        result = await arun_goal(GOAL, settings=settings, approvals="auto")
        return time.perf_counter() - started, result["status"], len(result.get("steps") or []), result.get("error")

    out: dict[str, Any] = {}
    for n in sizes:
        rounds = single_repeats if n == 1 else 1
        walls, latencies, statuses, steps, errors = [], [], [], [], []
        for _ in range(rounds):
            reset_world(settings)
            started = time.perf_counter()
            results = await asyncio.gather(*(one() for _ in range(n)))
            walls.append(time.perf_counter() - started)
            latencies += [r[0] for r in results]
            statuses += [r[1] for r in results]
            steps += [r[2] for r in results]
            errors += [r[3][:200] for r in results if r[1] != "done" and r[3]]
        wall = statistics.median(walls)
        out[str(n)] = {
            "goals": n,
            "wall_s": round(wall, 3),
            "throughput_goals_per_s": round(n / wall, 3),
            "latency_p50_s": round(percentile(latencies, 0.5), 3),
            "latency_p95_s": round(percentile(latencies, 0.95), 3),
            "done": statuses.count("done"),
            "runs": len(statuses),
            "not_done": {k: statuses.count(k) for k in sorted(set(statuses)) if k != "done"},
            "nodes_per_goal": statistics.median(steps),
            "errors": sorted(set(errors)),
        }
        log(
            f"  {n} concurrent goals: {wall:.2f} s wall, p95 {out[str(n)]['latency_p95_s']} s, "
            f"{statuses.count('done')}/{len(statuses)} done"
        )
    return out


async def bench_processes(settings: Any, url: str, goals: int, repeats: int) -> dict[str, Any]:
    """``goals`` mesh goals at once in this process, then in two goal-worker processes (``agentmesh worker --goals``,
    started and warmed first, as under ``agentmesh serve --processes 2``), interleaved."""
    from agentmesh import arun_goals
    from agentmesh.runtime import goal_workers

    # The workers read their settings from the environment: the same model server and approvals.
    os.environ.update(OPENAI_BASE_URL=url, OPENAI_API_KEY="bench", AGENTMESH_APPROVALS="auto")
    walls: dict[str, list[float]] = {"one_process": [], "two_worker_processes": []}
    done = {k: 0 for k in walls}

    async def on_workers(n: int) -> int:
        requests = [goal_workers.request(GOAL, graph="mesh", settings=settings) for _ in range(n)]
        ids = await asyncio.gather(*(goal_workers.run_on_workers(r, settings) for r in requests))
        from agentmesh.persistence.runs import get_run
        from agentmesh.runtime.components import components

        return sum(get_run(components(settings).engine, i)["status"] == "done" for i in ids)

    with goal_workers.local_workers(2, limit=goals, settings=settings):
        await on_workers(4)  # warm-up: both workers connected, imports done
        for _ in range(repeats):
            reset_world(settings)
            started = time.perf_counter()
            runs = await arun_goals([GOAL] * goals, settings=settings)
            walls["one_process"].append(time.perf_counter() - started)
            done["one_process"] += sum(r["status"] == "done" for r in runs)
            reset_world(settings)
            started = time.perf_counter()
            done["two_worker_processes"] += await on_workers(goals)
            walls["two_worker_processes"].append(time.perf_counter() - started)
    out = {k: {"wall_s": spread(v, 3), "done": done[k], "runs": goals * repeats} for k, v in walls.items()}
    out["goals"] = goals
    log(f"  {goals} goals: one process {out['one_process']['wall_s']['median']} s, two worker processes "
        f"{out['two_worker_processes']['wall_s']['median']} s")
    return out


# -- 3. eval throughput -----------------------------------------------------------------------------------


async def bench_eval(settings: Any) -> dict[str, Any]:
    from agentmesh.core.bundled import bundled
    from agentmesh.evaluation import arun_eval, load_scenarios
    from agentmesh.evaluation.runner import EvalOptions

    scenarios = load_scenarios([bundled("evals") / "ops"])
    base = settings.model_copy(update={"model": "offline"})
    started = time.perf_counter()
    report = await arun_eval(scenarios, EvalOptions(trials=1, concurrency=4, settings=base))
    seconds = time.perf_counter() - started
    trials = sum(len(s["trial_results"]) for s in report["scenarios"])
    return {
        "trials": trials,
        "seconds": round(seconds, 2),
        "trials_per_s": round(trials / seconds, 3),
        "mean_reward": report["summary"].get("mean_reward"),
    }


# -- 4. cold start -------------------------------------------------------------------------------------------


def cold_start(home: Path, workdir: Path) -> dict[str, float]:
    """One new `agentmesh run` process: seconds to its first stderr line and to its decision (stdout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENTMESH_", "PREFECT_"))}
    env.update(
        AGENTMESH_HOME=str(home),
        AGENTMESH_MODEL="offline",
        AGENTMESH_APPROVALS="auto",
        COLUMNS="200",
        PYTHONUNBUFFERED="1",
    )
    command = [str(Path(sys.executable).parent / "agentmesh"), "run", GOAL]
    marks: dict[str, float] = {}
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def watch(stream: Any, key: str) -> None:
        for line in stream:
            if line.strip() and key not in marks:
                marks[key] = time.perf_counter() - started
            if key == "first_event" and line.startswith("agentmesh run ") and "run_started" not in marks:
                marks["run_started"] = time.perf_counter() - started
            if key == "decision_line" and "decision" in line.lower() and "decision" not in marks:
                marks["decision"] = time.perf_counter() - started

    threads = [
        threading.Thread(target=watch, args=(process.stderr, "first_event")),
        threading.Thread(target=watch, args=(process.stdout, "decision_line")),
    ]
    for t in threads:
        t.start()
    code = process.wait(300)
    marks["exit"] = time.perf_counter() - started
    for t in threads:
        t.join()
    marks.setdefault("decision", marks.get("decision_line", marks["exit"]))
    marks["exit_code"] = code
    return marks


def bench_cold_start(home: Path, repeats: int) -> dict[str, Any]:
    workdir = home.parent / "cold-cwd"
    workdir.mkdir(exist_ok=True)
    runs = [cold_start(home, workdir) for _ in range(repeats)]
    failed = [r for r in runs if r["exit_code"] != 0]
    return {
        "run_started_s": spread([r.get("run_started", r["decision"]) for r in runs], 2),
        "first_event_s": spread([r["first_event"] for r in runs], 2),
        "decision_s": spread([r["decision"] for r in runs], 2),
        "exit_s": spread([r["exit"] for r in runs], 2),
        "failed_runs": len(failed),
    }


def bench_import() -> dict[str, Any]:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import agentmesh"], check=True)
        times.append(time.perf_counter() - started)
    return {"import_agentmesh_s": spread(times, 2)}


# -- the report ---------------------------------------------------------------------------------------------


def verdict(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, bound = TARGETS[key]
    met = value <= bound if op == "<=" else value >= bound
    return ("met" if met else "**missed**") + f" ({op} {bound})"


def markdown(result: dict[str, Any]) -> str:
    d = result["detail"]
    layers = d["layers"]
    rows = [
        ("baseline_langgraph_node_ms", result["baseline_langgraph_node_ms"], layers["langgraph"]["node_ms"]),
        ("baseline_prefect_task_ms", result["baseline_prefect_task_ms"], layers["prefect"]["node_ms"]),
        ("overhead_per_node_ms", result["overhead_per_node_ms"], None),
        ("overhead_per_node_traced_ms", result["overhead_per_node_traced_ms"], None),
        ("overhead_per_goal_ms", result["overhead_per_goal_ms"], None),
        ("critical_path_efficiency", result["critical_path_efficiency"], d["critical_path"]["efficiency"]),
        ("concurrent_32_slowdown", result["concurrent_32_slowdown"], None),
        ("cold_start_first_event_s", result["cold_start_first_event_s"], d["cold_start"]["first_event_s"]),
        ("cold_start_decision_s", result["cold_start_decision_s"], d["cold_start"]["decision_s"]),
        ("eval_trials_per_s", result["eval_trials_per_s"], None),
        ("peak_rss_mb", result["peak_rss_mb"], None),
    ]
    load = result["load_average"]
    lines = [
        f"Measured {result['measured']} on {result['machine']} ({'quick' if result['quick'] else 'full'} mode); "
        f"1-minute load average {load['start']} at the start, {load['end']} at the end.",
        "",
        "| figure | median | min – max | target |",
        "|---|---:|---:|---|",
    ]
    for key, value, s in rows:
        span = f"{s['min']} – {s['max']}" if s else ""
        lines.append(f"| `{key}` | {value} | {span} | {verdict(key, value)} |")
    lines += [
        "",
        "Per layer, the same line-of-nodes graph (instant model; ms, median [min – max]):",
        "",
        "| layer | per node | goal fixed cost | 12-node goal | CPU per node (here + Prefect server) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in (
        ("langgraph", "bare LangGraph"),
        ("langgraph_checkpointer", "LangGraph + AsyncSqliteSaver"),
        ("prefect", "LangGraph, nodes as plain Prefect tasks"),
        ("agentmesh", "agentmesh"),
        ("agentmesh_traced", "agentmesh, OpenTelemetry traces on"),
    ):
        layer = layers[name]
        cells = [
            f"{layer[k]['median']} [{layer[k]['min']} – {layer[k]['max']}]"
            for k in ("node_ms", "goal_fixed_ms", f"goal_{LONG}_nodes_ms")
        ]
        cells.append(f"{layer['node_cpu_ms']['median']} + {layer['node_server_cpu_ms']['median']}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Concurrent mesh goals in one process, 200 ms per model call:",
        "",
        "| goals | wall s | goals/s | p50 latency s | p95 latency s | done |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["concurrency"].values():
        lines.append(
            f"| {row['goals']} | {row['wall_s']} | {row['throughput_goals_per_s']} | {row['latency_p50_s']} | "
            f"{row['latency_p95_s']} | {row['done']}/{row.get('runs', row['goals'])} |"
        )
    cp = d["critical_path"]
    mesh = d["mesh_instant"]
    lines += [
        "",
        f'Mesh goal ("{GOAL}"): {mesh["nodes"]:g} nodes, {mesh["model_calls"]:g} model calls; instant model '
        f"{mesh['goal_ms']['median']} ms wall ({mesh['goal_cpu_ms']['median']} ms CPU in this process); at 200 ms a call {cp['wall_s']['median']} s wall for "
        f"{cp['model_s_on_path']} s of model time on the critical path ({cp['calls_on_path']} of "
        f"{cp['calls_total']} calls, {cp['worker_waves']} worker waves, widest {cp['widest_wave']}).",
        f"Cold start: the runtime's own first event (`agentmesh run <id>`) at "
        f"{d['cold_start'].get('run_started_s', {}).get('median', '?')} s, process exit {d['cold_start']['exit_s']['median']} s; the first run in a new home, which "
        f"also starts the local Prefect server: first line {d['first_ever']['first_event']:.2f} s, decision "
        f"{d['first_ever']['decision']:.2f} s. `import agentmesh`: {d['import']['import_agentmesh_s']['median']} s.",
        f"Eval: {d['eval']['trials']} trials in {d['eval']['seconds']} s.",
        *([] if "processes" not in d else [
            f"{d['processes']['goals']} mesh goals at once, 200 ms a call, in one process: "
            f"{d['processes']['one_process']['wall_s']['median']} s wall "
            f"[{d['processes']['one_process']['wall_s']['min']} – {d['processes']['one_process']['wall_s']['max']}]; "
            f"in two goal-worker processes (`agentmesh worker --goals`, as `agentmesh serve --processes 2`): "
            f"{d['processes']['two_worker_processes']['wall_s']['median']} s "
            f"[{d['processes']['two_worker_processes']['wall_s']['min']} – "
            f"{d['processes']['two_worker_processes']['wall_s']['max']}] "
            f"({d['processes']['two_worker_processes']['done']}/{d['processes']['two_worker_processes']['runs']} "
            "done)."]),
        "",
        f"Where a warm mesh goal's time goes by layer (instant model; pyinstrument samples, waiting left out; "
        f"the goal used {d['profile']['goal_cpu_ms']} ms of CPU; the call tree is in `profile-goal.txt`):",
        "",
        "| layer | ms | share |",
        "|---|---:|---:|",
        *[f"| {k} | {v} | {d['profile']['share_by_layer'][k]:.0%} |" for k, v in d["profile"]["busy_ms_by_layer"].items()],
        "",
        "Definitions:",
        "",
    ]
    lines += [f"- `{k}`: {v}" for k, v in DEFINITIONS.items()]
    return "\n".join(lines) + "\n"


async def measure(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    from agentmesh import Settings
    from agentmesh.runtime.prefect import configure_prefect

    repeats = args.repeats or (5 if args.quick else 15)
    few = max(2, repeats // 2)
    detail: dict[str, Any] = {}
    with model_server(0.0) as instant_url, model_server(LATENCY_S) as slow_url:
        os.environ["BENCH_OPENAI_BASE_URL"] = instant_url
        common = dict(home=home, graphs_paths=[CHAIN_DIR], approvals="auto", node_retries=0)
        chain_settings = Settings(model="offline", **common)
        instant = Settings(model="gpt-4o-mini", openai_base_url=instant_url, openai_api_key="bench", **common)
        slow = Settings(model="gpt-4o-mini", openai_base_url=slow_url, openai_api_key="bench", **common)
        configure_prefect(
            chain_settings
        )  # before the first `import prefect`: the baseline uses the same server
        log("layers: the same graph bare, with Prefect tasks, with agentmesh")
        detail["layers"] = await bench_layers(chain_settings, repeats)
        log("mesh goal, instant model")
        detail["mesh_instant"] = await bench_mesh_instant(instant, few)
        log("profile of a warm mesh goal, instant model")
        detail["profile"] = await bench_profile(instant, args.out)
        log("critical path, 200 ms a model call")
        detail["critical_path"] = await bench_critical_path(slow, few)
        log("concurrent goals, 200 ms a model call")
        concurrency = await bench_concurrency(slow, [1, 8, 32, 64], few)
        log("32 goals at once: one process, two goal-worker processes; 200 ms a model call")
        detail["processes"] = await bench_processes(slow, slow_url, 32, max(1, few // 2))
    log("eval throughput, offline model")
    detail["eval"] = await bench_eval(chain_settings)
    return {"detail": detail, "concurrency": concurrency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: under 5 minutes on 2 cores")
    parser.add_argument(
        "--repeats", type=int, default=0, help="repeats per figure (default 5 quick, 15 full)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", action="store_true", help="only rewrite latest.md from latest.json")
    args = parser.parse_args()
    if args.render:
        (args.out / "latest.md").write_text(markdown(json.loads((args.out / "latest.json").read_text())))
        return
    started = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)
    root = Path(tempfile.mkdtemp(prefix="agentmesh-bench-"))
    home = root / "home"
    # This process and the cold-start processes share one home, so one local Prefect server.
    for key in [k for k in os.environ if k.startswith(("AGENTMESH_", "PREFECT_", "OPENAI_"))]:
        del os.environ[key]
    os.environ["AGENTMESH_HOME"] = str(home)
    detail: dict[str, Any] = {}
    try:
        log("cold start: the first run in a new home (starts the local Prefect server)")
        workdir = root / "cold-cwd"
        workdir.mkdir()
        detail["first_ever"] = cold_start(home, workdir)
        log("cold start: new `agentmesh run` processes, server running")
        detail["cold_start"] = bench_cold_start(home, 3 if args.quick else 7)
        detail["import"] = bench_import()
        measured = asyncio.run(measure(args, home))
    finally:
        from agentmesh.runtime.prefect import stop_local_server

        stop_local_server(home / "prefect")
    detail.update(measured["detail"])
    layers = detail["layers"]
    concurrency = measured["concurrency"]
    result = {
        "baseline_langgraph_node_ms": layers["langgraph"]["node_ms"]["median"],
        "baseline_prefect_task_ms": layers["prefect"]["node_ms"]["median"],
        "overhead_per_node_ms": round(
            layers["agentmesh"]["node_ms"]["median"] - layers["langgraph"]["node_ms"]["median"], 2
        ),
        "overhead_per_node_traced_ms": round(
            layers["agentmesh_traced"]["node_ms"]["median"] - layers["langgraph"]["node_ms"]["median"], 2
        ),
        "overhead_per_goal_ms": round(
            layers["agentmesh"]["goal_fixed_ms"]["median"] - layers["langgraph"]["goal_fixed_ms"]["median"], 1
        ),
        "critical_path_efficiency": detail["critical_path"]["efficiency"]["median"],
        "concurrent_32_slowdown": round(concurrency["32"]["wall_s"] / concurrency["1"]["wall_s"], 2),
        "concurrency": concurrency,
        "cold_start_first_event_s": detail["cold_start"]["first_event_s"]["median"],
        "cold_start_decision_s": detail["cold_start"]["decision_s"]["median"],
        "eval_trials_per_s": detail["eval"]["trials_per_s"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "quick": args.quick,
        "load_average": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
        "definitions": DEFINITIONS,
        "seconds": 0.0,
        "detail": detail,
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    table = markdown(result)
    (args.out / "latest.md").write_text(table)
    print(table)
    log(f"done in {result['seconds']} s; wrote {args.out / 'latest.json'} and latest.md")


if __name__ == "__main__":
    main()
