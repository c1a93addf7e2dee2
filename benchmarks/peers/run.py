"""agentmesh side by side with its peers on one workload: `make bench-peers` (under 10 minutes on 2 cores).

    .venv/bin/python benchmarks/peers/run.py            # the full run: two repeats
    .venv/bin/python benchmarks/peers/run.py --quick    # fewer rounds, one repeat (development)

The workload (``workload.py``): one agent, 4 model requests and 3 tool calls a run, against a local
OpenAI-protocol server in its own process (``benchmarks/model_server.py --responder peers``) that answers from
a script after a fixed latency: 0 ms (the instant model) or 200 ms a call. Six variants (``variants.py``):
plain LangGraph, LangGraph with nodes as Prefect tasks, Pydantic AI with and without ``PrefectDurability``,
and agentmesh two ways (an ``Agent`` step; a ReAct graph made durable by ``compile``). Each variant runs in a
process of its own (``worker.py``); those that use Prefect share agentmesh's local Prefect server.

Per repeat: interleaved rounds (every variant once a round, the order rotating; warm-up rounds discarded) at
the instant model and at 200 ms; CPU blocks (a variant's runs back to back, then a wait for Prefect's
background flushes, the server's idle CPU subtracted); 16 runs at once; cold starts (a new process to its
first result: for agentmesh, ``agentmesh run`` with the local Prefect server running).

Every run is checked: the model server's count of its requests (4) and of the tool results it was sent back
(3, each readable), the tool calls executed (3), the answer (which only the right tool results make), and for
agentmesh the run's status, steps and audit. A run that fails a check is reported, never counted.

Writes ``benchmarks/results/peers.json`` and ``peers.md``. Benchmarks are not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
BENCHMARKS = HERE.parent
RESULTS = BENCHMARKS / "results"
sys.path.insert(0, str(HERE))

import variants  # noqa: E402
import workload  # noqa: E402

LATENCY_S = 0.2
BURST = 16
SETTLE_S = 7.5  # Prefect flushes events and task-run records every 5 s, the client its logs every 2 s
TASK_RUNS = {"langgraph_prefect": workload.STEPS, "pydantic_ai_prefect": workload.STEPS, "agentmesh_agent": 1,
             "agentmesh_react": workload.STEPS}  # Prefect task runs a run of each variant makes
AT_LEAST = {"pydantic_ai_prefect"}  # its integration may add task runs of its own (pydantic-ai 2.78: one for the run id)

TARGETS = {
    "overhead_per_step_ms": ("<=", 5),
    "slow_ratio": ("<=", 1.05),
    "burst_ratio": ("<=", 1.5),
    "cold_s": ("<=", 2),  # agentmesh only: `agentmesh run` to the decision, local Prefect server running
}

DEFINITIONS = {
    "ms/run (instant)": "Wall time of one run in a warm process, the model answering at once: median "
    "[min – max] over the interleaved rounds of every repeat.",
    "overhead per step": f"(ms/run of the variant − ms/run of plain LangGraph in the same round) / {workload.STEPS} "
    f"steps ({workload.MODEL_REQUESTS} model requests + {workload.TOOL_CALLS} tool calls); median [min – max] over rounds.",
    "client CPU / server CPU": "CPU seconds per run of the variant's process (every thread) and of the Prefect "
    f"server process, from a block of runs back to back until {SETTLE_S} s after the last (Prefect's "
    "background flushes included), each process's idle CPU rate subtracted; median over repeats.",
    "server CPU per step": f"Prefect server CPU per run / {workload.STEPS}.",
    "÷ LangGraph @200 ms": "Wall time of one run at 200 ms a model call (0.8 s of model time) / plain "
    "LangGraph's in the same round; median [min – max] over rounds.",
    "16 at once ÷ one": f"Wall time of {BURST} runs started at once in one process (asyncio.gather) / the "
    "median wall time of one run, both at 200 ms a call, in the same repeat.",
    "cold start": "A new process to its first result, instant model: for agentmesh `agentmesh run --json "
    "--graph …` (the CLI; local Prefect server already running) to the decision; for the others `python "
    "benchmarks/peers/worker.py VARIANT --once` (import, build, run once, print).",
    "Prefect task runs": "Task runs the Prefect server recorded for one run (what is durable: a node, a model "
    "request, a tool call).",
}


# -- small helpers -----------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def spread(values: list[float], digits: int = 2) -> dict[str, Any]:
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "n": len(values)}


def load() -> float:
    return round(os.getloadavg()[0], 2)


def _readline(process: subprocess.Popen[str], timeout: float, what: str) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"{what}: no answer within {timeout:.0f} s (exit code {process.poll()})")
    return line


class ModelServer:
    """benchmarks/model_server.py with the peers script, driven over its stdin."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(BENCHMARKS / "model_server.py"), "--responder", "peers", "--latency", "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.url = _readline(self.process, 60, "the model server").strip()
        if not self.url.startswith("http"):
            raise RuntimeError(f"the model server did not start: {self.url!r}")

    def command(self, line: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return json.loads(_readline(self.process, 30, "the model server"))

    def latency(self, seconds: float) -> None:
        self.command(f"latency {seconds}")

    def stats(self) -> dict[str, Any]:
        return dict(self.command("stats"))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Worker:
    """One variant's process (worker.py)."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py"), name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=env, cwd=env["BENCH_CWD"],
        )

    def request(self, payload: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(payload) + "\n")
        self.process.stdin.flush()
        reply = json.loads(_readline(self.process, timeout, f"worker {self.name}"))
        if "error" in reply:
            raise RuntimeError(f"worker {self.name}: {reply['error']}")
        return dict(reply)

    def cpu_s(self) -> float:
        return process_cpu_s(self.process.pid)

    def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def process_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its living children (without psutil: the process alone)."""
    try:
        import psutil
    except ImportError:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0
    try:
        process = psutil.Process(pid)
        total = sum(process.cpu_times()[:2])
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += sum(child.cpu_times()[:2])
        return float(total)
    except psutil.Error:
        return 0.0


def listening_pid(url: str) -> int | None:
    """The process listening on a local URL's port (the Prefect server agentmesh started); None without psutil."""
    try:
        import psutil
    except ImportError:
        return None
    port = urlsplit(url).port
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    return None


# -- the checks ---------------------------------------------------------------------------------------------


class Ledger:
    """Every run's check: counted runs and failed ones, with their reasons."""

    def __init__(self) -> None:
        self.counted: dict[str, int] = {}
        self.failed: dict[str, list[str]] = {}

    def check(self, name: str, runs: list[dict[str, Any]], server: dict[str, Any], tool_calls: int) -> list[bool]:
        """Check the runs of one worker reply: each run's own tool calls when it ran alone, else the total
        (``tool_calls``) of runs that ran at once."""
        oks = []
        for run in runs:
            problems = list(run.get("problems") or [])
            problems += workload.check(server.get(run["token"]), run.get("answer") or "", run.get("tool_calls"))
            if "tool_calls" not in run and tool_calls != workload.TOOL_CALLS * len(runs):
                problems.append(f"{tool_calls} tool calls executed by {len(runs)} runs at once, expected "
                                f"{workload.TOOL_CALLS * len(runs)}")
            self.record(name, run["token"], problems)
            oks.append(not problems)
        return oks

    def record(self, name: str, token: str, problems: list[str]) -> None:
        if problems:
            self.failed.setdefault(name, []).append(f"{token}: " + "; ".join(problems))
        else:
            self.counted[name] = self.counted.get(name, 0) + 1


# -- the phases ---------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, names: list[str], model: ModelServer, env: dict[str, str],
                 server_pid: int | None) -> None:
        self.args, self.names, self.model, self.env, self.server_pid = args, names, model, env, server_pid
        self.ledger = Ledger()
        self.workers: dict[str, Worker] = {}
        self.serial = 0

    def token(self, name: str, phase: str) -> str:
        self.serial += 1
        return f"{name}.{phase}.{self.serial}"

    def server_cpu_s(self) -> float:
        return process_cpu_s(self.server_pid) if self.server_pid else 0.0

    def run(self, name: str, phase: str, count: int = 1, sequential: bool = False) -> tuple[dict[str, Any], list[bool]]:
        tokens = [self.token(name, phase) for _ in range(count)]
        reply = self.workers[name].request({"op": "run", "tokens": tokens, "sequential": sequential})
        server = self.model.stats()
        return reply, self.ledger.check(name, reply["runs"], server, reply["tool_calls"])

    def order(self, round_index: int) -> list[str]:
        shift = round_index % len(self.names)
        return self.names[shift:] + self.names[:shift]

    def rounds(self, phase: str, warmup: int, rounds: int) -> list[dict[str, float | None]]:
        """Interleaved rounds: each variant once a round; each round's wall times, None for a failed run."""
        out = []
        for index in range(warmup + rounds):
            walls: dict[str, float | None] = {}
            for name in self.order(index):
                reply, oks = self.run(name, phase if index >= warmup else "warmup")
                walls[name] = reply["runs"][0]["wall_s"] if oks[0] else None
                walls[name + ":cpu"] = reply["cpu_s"] if oks[0] else None
            if index >= warmup:
                out.append(walls)
        return out

    def idle_rates(self, seconds: float) -> dict[str, float]:
        """CPU seconds per second of the Prefect server and of each worker while nothing runs."""
        before = {n: w.cpu_s() for n, w in self.workers.items()} | {"server": self.server_cpu_s()}
        started = time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - started
        after = {n: w.cpu_s() for n, w in self.workers.items()} | {"server": self.server_cpu_s()}
        return {k: (after[k] - before[k]) / elapsed for k in before}

    def cpu_blocks(self, per_block: int, idle: dict[str, float]) -> dict[str, dict[str, float]]:
        """Per variant: its runs back to back, then a wait for Prefect's background flushes; CPU per run of
        the variant's process and of the Prefect server, idle rates subtracted."""
        out = {}
        for name in self.names:
            worker = self.workers[name]
            cpu, server, started = worker.cpu_s(), self.server_cpu_s(), time.perf_counter()
            _, oks = self.run(name, "cpu", per_block, sequential=True)
            if name in variants.USES_PREFECT:
                time.sleep(SETTLE_S)
            elapsed = time.perf_counter() - started
            client_s = worker.cpu_s() - cpu - idle[name] * elapsed
            server_s = self.server_cpu_s() - server - idle["server"] * elapsed
            if all(oks):
                out[name] = {"client_cpu_ms": client_s / per_block * 1000, "server_cpu_ms": server_s / per_block * 1000}
        return out

    def burst(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name in self.names:
            reply, oks = self.run(name, "burst", BURST)
            walls = [r["wall_s"] for r in reply["runs"]]
            out[name] = {"wall_s": reply["wall_s"], "ok": all(oks), "latency_p50_s": statistics.median(walls),
                         "latency_max_s": max(walls), "cpu_s": reply["cpu_s"]}
        return out

    def cold(self, name: str) -> dict[str, Any]:
        token = self.token(name, "cold")
        env = dict(self.env)
        if name.startswith("agentmesh"):
            graph = "peers-agent" if name == "agentmesh_agent" else "peers-react"
            command = [str(Path(sys.executable).parent / "agentmesh"), "run", "--json", "--graph", graph,
                       workload.goal(token)]
        else:
            command = [sys.executable, str(HERE / "worker.py"), name, "--once", token]
        if name in variants.USES_PREFECT and not name.startswith("agentmesh"):
            env["PREFECT_API_URL"] = self.env["BENCH_PREFECT_API_URL"]
        result = cold_process(command, env)
        server = self.model.stats()
        problems = []
        answer = ""
        tool_calls: int | None = workload.TOOL_CALLS
        try:
            document = json.loads(result.pop("stdout"))
        except ValueError:
            document = {}
            problems.append(f"no JSON result (exit code {result['exit_code']}): {result.get('stderr', '')[-300:]}")
        if name.startswith("agentmesh") and document:
            answer = (document.get("decision") or {}).get("summary") or ""
            problems += variants.audit_problems(name, document)
            tool_calls = None  # another process: the audit stands for the count
        elif document:
            run = document["runs"][0]
            answer, tool_calls = run.get("answer") or "", document["tool_calls"]
            problems += run.get("problems") or []
        problems += workload.check(server.get(token), answer, tool_calls)
        if result["exit_code"] != 0:
            problems.append(f"exit code {result['exit_code']}")
        self.ledger.record(name, token, problems)
        result.pop("stderr", None)
        result["ok"] = not problems
        return result


def cold_process(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Seconds from starting a process to its first stdout line (its result), and to its exit."""
    marks: dict[str, Any] = {}
    lines: list[str] = []
    errors: list[str] = []
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=env["BENCH_CWD"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)

    def read(stream: Any, into: list[str], key: str) -> None:
        for line in stream:
            if key not in marks and line.strip():
                marks[key] = time.perf_counter() - started
            into.append(line)

    threads = [threading.Thread(target=read, args=(process.stdout, lines, "result_s")),
               threading.Thread(target=read, args=(process.stderr, errors, "stderr_s"))]
    for thread in threads:
        thread.start()
    try:
        code = process.wait(300)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    exit_s = time.perf_counter() - started
    for thread in threads:
        thread.join()
    return {"result_s": marks.get("result_s", exit_s), "exit_s": exit_s, "exit_code": code,
            "stdout": "".join(lines), "stderr": "".join(errors)}


# -- the report --------------------------------------------------------------------------------------------


def verdict(key: str, value: float | None, name: str = "agentmesh") -> str:
    """Met or missed, for agentmesh's rows: the targets are agentmesh's."""
    if key not in TARGETS or value is None or not name.startswith("agentmesh"):
        return ""
    op, bound = TARGETS[key]
    met = value <= bound if op == "<=" else value >= bound
    return "met" if met else "**missed**"


def summarise(names: list[str], repeats: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base = "langgraph"
    for name in names:
        instant, overhead, slow, ratio, burst, cpu_client, cpu_server, cold, in_run_cpu = ([] for _ in range(9))
        by_repeat = []
        for rep in repeats:
            walls = [r[name] * 1000 for r in rep["instant"] if r.get(name) is not None]
            instant += walls
            in_run_cpu += [r[name + ":cpu"] * 1000 for r in rep["instant"] if r.get(name + ":cpu") is not None]
            by_repeat.append(round(statistics.median(walls), 1) if walls else None)
            overhead += [(r[name] - r[base]) * 1000 / workload.STEPS for r in rep["instant"]
                         if r.get(name) is not None and r.get(base) is not None]
            slow_walls = [r[name] for r in rep["slow"] if r.get(name) is not None]
            slow += slow_walls
            ratio += [r[name] / r[base] for r in rep["slow"] if r.get(name) is not None and r.get(base)]
            if name in rep["burst"] and rep["burst"][name]["ok"] and slow_walls:
                burst.append(rep["burst"][name]["wall_s"] / statistics.median(slow_walls))
            if name in rep["cpu"]:
                cpu_client.append(rep["cpu"][name]["client_cpu_ms"])
                cpu_server.append(rep["cpu"][name]["server_cpu_ms"])
            cold += [c["result_s"] for c in rep["cold"].get(name, []) if c["ok"]]
        server_ms = statistics.median(cpu_server) if cpu_server else None
        out[name] = {
            "label": variants.LABELS[name],
            "instant_ms": spread(instant, 1),
            "instant_ms_by_repeat": by_repeat,
            "overhead_per_step_ms": spread(overhead, 2) if name != base else None,
            "in_run_cpu_ms": spread(in_run_cpu, 1),
            "client_cpu_ms": spread(cpu_client, 1),
            "server_cpu_ms": spread(cpu_server, 1),
            "server_cpu_per_step_ms": round(server_ms / workload.STEPS, 2) if server_ms is not None else None,
            "slow_s": spread(slow, 3),
            "slow_ratio": spread(ratio, 3),
            "burst_ratio": spread(burst, 2),
            "burst": [rep["burst"].get(name) for rep in repeats],
            "cold_s": spread(cold, 2),
        }
    return out


def cell(s: dict[str, Any] | None, unit: str = "") -> str:
    if not s or s.get("median") is None:
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return f"{s['median']}{unit}"
    return f"{s['median']}{unit} [{s['min']} – {s['max']}]"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Measured {result['measured']} on {result['machine']}; {result['mode']}; "
        f"{result['repeats']} repeat(s) of {result['rounds']['instant']} rounds at the instant model and "
        f"{result['rounds']['slow']} at 200 ms, warm-up discarded; took {result['seconds']} s.",
        f"Load average (1 min): {result['load_average']['start']} at the start, {result['load_average']['max']} "
        f"at most, {result['load_average']['end']} at the end" + (
            f" (the Prefect server's idle CPU, subtracted: {result['server_idle_cpu_pct']} % of a core)."
            if result["server_idle_cpu_pct"] is not None else ".") + (
            f" The first agentmesh run in the new home, which started the local Prefect server: "
            f"{result['first_agentmesh_run_s']} s." if result.get("first_agentmesh_run_s") else ""),
        "",
        "| variant | ms/run, instant model | overhead per step vs LangGraph | client / Prefect server CPU per run "
        "| ÷ LangGraph @200 ms | 16 at once ÷ one | cold start s | Prefect task runs | runs checked (failed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in result["variants"].items():
        client, server = v["client_cpu_ms"]["median"], v["server_cpu_ms"]["median"]
        if client is None:
            cpu = "–"
        elif name in variants.USES_PREFECT:
            cpu = f"{client} / {server} ms ({v['server_cpu_per_step_ms']} a step)"
        else:
            cpu = f"{client} / – ms"
        overhead = "–" if v["overhead_per_step_ms"] is None else (
            cell(v["overhead_per_step_ms"], " ms") + f" {verdict('overhead_per_step_ms', v['overhead_per_step_ms']['median'], name)}")
        slow = cell(v["slow_ratio"]) + (f" {verdict('slow_ratio', v['slow_ratio']['median'], name)}" if name != "langgraph" else "")
        burst = cell(v["burst_ratio"]) + f" {verdict('burst_ratio', v['burst_ratio']['median'], name)}"
        cold = cell(v["cold_s"]) + (f" {verdict('cold_s', v['cold_s']['median'], name)}" if name.startswith("agentmesh") else "")
        repeats = " / ".join(str(x) for x in v["instant_ms_by_repeat"])
        counted = result["checks"]["counted"].get(name, 0)
        failed = len(result["checks"]["failed"].get(name, []))
        lines.append(
            f"| {v['label']} | {cell(v['instant_ms'])} (repeats: {repeats}) | {overhead.strip()} | {cpu} | {slow.strip()} | "
            f"{burst.strip()} | {cold.strip()} | "
            f"{result['task_runs'].get(name, '–')} | {counted} ({failed}) |"
        )
    lines += [
        "",
        "Targets: overhead per step ≤ 5 ms; one run ÷ plain LangGraph at 200 ms ≤ 1.05; 16 at once ÷ one ≤ 1.5; "
        "cold `agentmesh run` to the decision ≤ 2 s (local Prefect server running); Prefect server CPU per step "
        "reported. Medians [min – max].",
    ]
    failed = result["checks"]["failed"]
    if any(failed.values()):
        lines += ["", "Runs that failed a check (not counted):", ""]
        for name, reasons in failed.items():
            for reason in reasons[:5]:
                lines.append(f"- {name}: {reason}")
            if len(reasons) > 5:
                lines.append(f"- {name}: … and {len(reasons) - 5} more")
    lines += ["", "Each run was checked for: " + result["checks"]["what"], "", "Definitions:", ""]
    lines += [f"- {k}: {v}" for k, v in DEFINITIONS.items()]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def workers(bench: Bench, env: dict[str, str]) -> Iterator[None]:
    try:
        for name in bench.names:
            worker_env = dict(env)
            if name in variants.USES_PREFECT and not name.startswith("agentmesh"):
                worker_env["PREFECT_API_URL"] = env["BENCH_PREFECT_API_URL"]
            bench.workers[name] = Worker(name, worker_env)
        for name, worker in bench.workers.items():
            url = worker.request({"op": "info"}, timeout=120)["prefect_api_url"]
            if name in variants.USES_PREFECT and not name.startswith("agentmesh") and url != env["BENCH_PREFECT_API_URL"]:
                raise RuntimeError(f"{name} would use the Prefect API at {url}, not the shared server")
        yield
    finally:
        for worker in bench.workers.values():
            worker.close()


def measure(args: argparse.Namespace, names: list[str], root: Path, prefect_home: Path,
            started_servers: list[int]) -> dict[str, Any]:
    home = root / "home"
    cwd = root / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    model = ModelServer()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTMESH_", "PREFECT_", "OPENAI_"))}
    env.update(
        BENCH_OPENAI_BASE_URL=model.url, BENCH_CWD=str(cwd), PYTHONUNBUFFERED="1", COLUMNS="200",
        AGENTMESH_HOME=str(home), PREFECT_HOME=str(prefect_home), PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
        AGENTMESH_MODEL="gpt-4o-mini", AGENTMESH_OPENAI_BASE_URL=model.url, AGENTMESH_OPENAI_API_KEY="bench",
        AGENTMESH_GRAPHS_PATHS=json.dumps([str(HERE / "graphs")]), AGENTMESH_TOOLS_PATHS=json.dumps([str(HERE / "tools")]),
    )
    try:
        first: dict[str, Any] = {"result_s": None}
        server_pid = None
        if any(n in variants.USES_PREFECT for n in names):
            log("first agentmesh run in a new home: starts (or finds) the local Prefect server")
            first = cold_process([str(Path(sys.executable).parent / "agentmesh"), "run", "--json", "--graph",
                                  "peers-agent", workload.goal("first")], env)
            model.stats()
            try:
                url = json.loads(first["stdout"])["prefect_api_url"]
            except (ValueError, KeyError):
                raise RuntimeError(f"the first agentmesh run failed: {first['stderr'][-2000:]}") from None
            env["BENCH_PREFECT_API_URL"] = os.environ["BENCH_PREFECT_API_URL"] = url  # checked by the audit
            server_pid = listening_pid(url)
            if server_pid:
                started_servers.append(server_pid)
            log(f"Prefect server {url} (pid {server_pid}); first run {first['result_s']:.1f} s")
        bench = Bench(args, names, model, env, server_pid)
        repeats = []
        task_runs: dict[str, int | str] = {}
        loads = [load()]
        with workers(bench, env):
            for repeat in range(args.repeats):
                rep: dict[str, Any] = {}
                model.latency(0)
                log(f"repeat {repeat + 1}: {args.rounds} interleaved rounds, instant model")
                warmup = 0 if args.smoke else 2 if repeat == 0 else 1
                rep["instant"] = bench.rounds("instant", warmup, args.rounds)
                loads.append(load())
                if repeat == 0:
                    log("durability check: the Prefect task runs of one run of each variant")
                    flow_runs = {}
                    for name in names:
                        reply, _ = bench.run(name, "durable")
                        if reply["runs"][0].get("flow_run_id"):
                            flow_runs[name] = reply["runs"][0]["flow_run_id"]
                    deadline = time.monotonic() + 3 * SETTLE_S  # the server records task runs in batches
                    for name, flow_run_id in flow_runs.items():
                        while True:
                            task_runs[name] = bench.workers[name].request(
                                {"op": "task_runs", "flow_run_id": flow_run_id})["task_runs"]
                            if task_runs[name] >= TASK_RUNS[name] or time.monotonic() > deadline:
                                break
                            time.sleep(0.5)
                        if task_runs[name] < TASK_RUNS[name] or (name not in AT_LEAST and
                                                                 task_runs[name] != TASK_RUNS[name]):
                            at_least = "at least " if name in AT_LEAST else ""
                            bench.ledger.failed.setdefault(name, []).append(
                                f"durability: {task_runs[name]} Prefect task runs, expected {at_least}"
                                f"{TASK_RUNS[name]}")
                if args.smoke:
                    repeats.append({**rep, "slow": [], "burst": {}, "cpu": {}, "cold": {}})
                    break
                log(f"repeat {repeat + 1}: CPU blocks ({args.block} runs a variant, {SETTLE_S} s settle after Prefect ones)")
                time.sleep(SETTLE_S)
                idle = bench.idle_rates(10.0)  # Prefect's idle loops run every 5 s
                rep["idle"] = idle
                rep["cpu"] = bench.cpu_blocks(args.block, idle)
                model.latency(LATENCY_S)
                log(f"repeat {repeat + 1}: {args.slow_rounds} interleaved rounds, 200 ms a model call")
                rep["slow"] = bench.rounds("slow", 1, args.slow_rounds)
                log(f"repeat {repeat + 1}: {BURST} runs at once, 200 ms a model call")
                rep["burst"] = bench.burst()
                loads.append(load())
                model.latency(0)
                log(f"repeat {repeat + 1}: cold starts ({args.cold} a variant)")
                rep["cold"] = {name: [bench.cold(name) for _ in range(args.cold)] for name in names}
                loads.append(load())
                repeats.append(rep)
        return {"repeats": repeats, "task_runs": task_runs, "ledger": bench.ledger, "loads": loads,
                "first_run_s": first["result_s"] and round(first["result_s"], 2), "server_pid": server_pid,
                "idle_server": statistics.median([r["idle"]["server"] for r in repeats if "idle" in r] or [-1])}
    finally:
        model.close()


def stop_server(pid: int, prefect_home: Path) -> None:
    """Stop the local Prefect server that this benchmark's own home started (checked by its PREFECT_HOME)."""
    import psutil  # the pid was found with psutil

    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        if process.environ().get("PREFECT_HOME") == str(prefect_home):
            process.terminate()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, one repeat (development)")
    parser.add_argument("--smoke", action="store_true", help="one round at the instant model, checks only")
    parser.add_argument("--variants", default=",".join(variants.VARIANTS), help="comma-separated")
    parser.add_argument("--repeats", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds a repeat, instant model")
    parser.add_argument("--prefect-home", type=Path, help="use (and leave running) this Prefect home's server")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", action="store_true", help="only rewrite peers.md from peers.json")
    args = parser.parse_args()
    if args.render:
        (args.out / "peers.md").write_text(markdown(json.loads((args.out / "peers.json").read_text())))
        return
    args.repeats = args.repeats or (1 if args.quick or args.smoke else 2)
    args.rounds = args.rounds or (1 if args.smoke else 5 if args.quick else 10)
    args.slow_rounds = 3 if args.quick else 5
    args.block = 3 if args.quick else 4
    args.cold = 1  # a repeat; cold processes cost the most time of any phase
    names = [n for n in args.variants.split(",") if n]
    if "langgraph" not in names:
        names.insert(0, "langgraph")  # the baseline every ratio divides by
    missing = [n for n in names if not variants.available(n)]
    if args.prefect_home is None:
        try:
            import psutil  # noqa: F401  (the Prefect server's CPU; stopping the server this run starts)
        except ImportError:
            missing.append("psutil")
    if missing:
        sys.exit(f"{', '.join(missing)} need the bench extra: .venv/bin/pip install -e '.[bench]' (make bench-peers does)")
    started = time.perf_counter()
    load_start = load()
    root = Path(tempfile.mkdtemp(prefix="agentmesh-peers-"))
    prefect_home = args.prefect_home or root / "home" / "prefect"
    servers: list[int] = []
    try:
        measured = measure(args, names, root, prefect_home, servers)
    finally:
        if args.prefect_home is None:
            for pid in servers:
                stop_server(pid, prefect_home)
        shutil.rmtree(root, ignore_errors=True)
    ledger: Ledger = measured["ledger"]
    loads = [load_start, *measured["loads"], load()]
    result = {
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
        "repeats": args.repeats,
        "rounds": {"instant": args.rounds, "slow": 0 if args.smoke else args.slow_rounds, "cpu_block": args.block,
                   "cold": args.cold, "burst": BURST},
        "load_average": {"start": load_start, "max": max(loads), "end": loads[-1], "samples": loads},
        "server_idle_cpu_pct": round(measured["idle_server"] * 100, 1) if measured["idle_server"] >= 0 else None,
        "first_agentmesh_run_s": measured["first_run_s"],
        "variants": summarise(names, measured["repeats"]),
        "task_runs": measured["task_runs"],
        "checks": {
            "counted": ledger.counted,
            "failed": ledger.failed,
            "what": (f"the model server saw exactly {workload.MODEL_REQUESTS} requests tagged with the run, and "
                     f"was sent back {workload.TOOL_CALLS} tool results, each readable; {workload.TOOL_CALLS} tool "
                     "calls executed (a batch's total for runs at once); the answer holds the numbers only the "
                     "three results give (66.7%, team-payments); agentmesh: status done, its steps (1 for the "
                     "Agent step, 7 for the ReAct graph) and an audit of exactly get_metrics, compute_reduction, "
                     "lookup_owner, all ok; Prefect variants: the task runs one run made (the table's column)."),
        },
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
        "definitions": DEFINITIONS,
        "seconds": round(time.perf_counter() - started, 1),
        "raw": measured["repeats"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    table = markdown(result)
    (args.out / "peers.md").write_text(table)
    print(table)
    log(f"done in {result['seconds']} s; wrote {args.out / 'peers.json'} and peers.md")


if __name__ == "__main__":
    main()
