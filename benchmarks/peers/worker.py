"""One variant in a process of its own, driven by the harness (``run.py``) over stdin/stdout, one JSON line each:

    {"op": "run", "tokens": ["a1"]}          one run            -> {"wall_s", "cpu_s", "tool_calls", "runs": [...]}
    {"op": "run", "tokens": ["b1", …, "b16"]} runs started at once, in one event loop (asyncio.gather)
    {"op": "run", "tokens": [...], "sequential": true}  one after another
    {"op": "task_runs", "flow_run_id": "…"}  how many Prefect task runs that flow run has (the durability check)
    {"op": "info"}                           the Prefect API this process uses, its pid

``--once TOKEN`` is the cold start: build the variant, run the workload once, print the run's JSON, exit.

A process per variant keeps their imports, background threads and CPU apart: ``cpu_s`` is this process's CPU
(every thread) during the call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from typing import Any

import variants  # noqa: E402  (benchmarks/peers is the script's folder, so on sys.path)
import workload


async def run_many(variant: variants.Variant, tokens: list[str], sequential: bool = False) -> dict[str, Any]:
    async def one(token: str) -> dict[str, Any]:
        started, calls = time.perf_counter(), workload.tool_calls_so_far()
        try:
            out = await variant.run(token)
        except Exception as exc:  # reported, never counted
            out = {"answer": "", "problems": [f"raised {type(exc).__name__}: {str(exc)[:300]}"], "flow_run_id": None}
        out["token"] = token
        out["wall_s"] = time.perf_counter() - started
        if sequential or len(tokens) == 1:  # alone in this process: its own tool calls
            out["tool_calls"] = workload.tool_calls_so_far() - calls
        return out

    calls, cpu = workload.tool_calls_so_far(), time.process_time()
    started = time.perf_counter()
    if sequential:
        runs = [await one(t) for t in tokens]
    else:
        runs = await asyncio.gather(*(one(t) for t in tokens))
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "tool_calls": workload.tool_calls_so_far() - calls,
        "runs": list(runs),
    }


async def task_runs(flow_run_id: str) -> int:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        found = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])))
    return len(found)


def info() -> dict[str, Any]:
    url = os.environ.get("PREFECT_API_URL")
    if not url and "prefect" in sys.modules:
        from prefect.settings import get_current_settings

        url = get_current_settings().api.url
    return {"pid": os.getpid(), "prefect_api_url": url}


async def serve(name: str, out: Any) -> None:
    variant = variants.make(name)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        request = json.loads(line)
        try:
            if request["op"] == "run":
                reply: Any = await run_many(variant, request["tokens"], bool(request.get("sequential")))
            elif request["op"] == "task_runs":
                reply = {"task_runs": await task_runs(request["flow_run_id"])}
            elif request["op"] == "info":
                reply = info()
            else:
                reply = {"error": f"unknown op {request['op']!r}"}
        except Exception:
            reply = {"error": traceback.format_exc()[-2000:]}
        out.write(json.dumps(reply, default=str) + "\n")
        out.flush()


async def once(name: str, token: str, out: Any) -> None:
    result = await run_many(variants.make(name), [token])
    out.write(json.dumps(result, default=str) + "\n")
    out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=variants.VARIANTS)
    parser.add_argument("--once", metavar="TOKEN", help="one run in this new process, then exit (cold start)")
    args = parser.parse_args()
    # The protocol owns stdout: anything a library prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    if args.once:
        asyncio.run(once(args.variant, args.once, out))
    else:
        asyncio.run(serve(args.variant, out))


if __name__ == "__main__":
    main()
