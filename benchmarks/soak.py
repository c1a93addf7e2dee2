"""Soak: many goals at once on shared services, through a model endpoint that fails 30% of the time.

Goals (ops, data and support, from the bundled eval suites' wording) run N at a time in one process against one
world, over the real ``langchain-openai`` HTTP path to a local OpenAI-protocol server. The server answers by the
offline rules, except that each request fails with probability ``--fault-rate``: 429 with Retry-After, 503, a
connection cut mid-body, a tool call with malformed JSON arguments, or a structured answer that does not validate.

Reported: completed / failed / budget-exceeded / waiting / hung counts (a goal is hung when it has not ended after
``--goal-timeout`` seconds), limit violations after the soak (the world checked against the policy: replica ranges,
the hourly cost ceiling, the refund cap and daily refund budget, protected datasets never cleaned, and every
successful scale within its step limit), audit completeness (every tool call id of every run's JSON has an audit
record with a final status) and model calls per goal. Must hold: 0 hung, 0 violations, 100% audit completeness.

    .venv/bin/python benchmarks/soak.py [--goals 200] [--concurrency 8] [--fault-rate 0.3] [--seed 7] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

GOALS = [
    "checkout-api p95 is at 900 ms, keep it under 300 ms without doubling cost",
    "payments-api is lagging badly; get it under 400 ms and notify the ops channel once done.",
    "Logins are crawling since the marketing email went out. auth-api p95 should be under 100 ms again.",
    "We're burning money on the recommendations service, it sits mostly idle. Trim its spend by about 40%.",
    "search-api is throwing a lot of errors today. What's going on with it? Just report back.",
    "Sort out the duplicated rows in the customers csv.",
    "There are duplicate entries in finance_ledger, please dedupe that dataset.",
    "sensor_readings has gaps and weird temperature spikes, can you clean that up before the dashboard refresh?",
    "Work through the high priority refund requests in the support queue today.",
    "A customer got billed twice for their order, please sort out their support ticket.",
    "Someone's blender showed up smashed and they're furious. Handle their ticket.",
]
FAULTS = ("429", "503", "cut", "malformed_args", "invalid_output")


class FaultyModel:
    """A responder: the offline rules, with a seeded fault on ``rate`` of the requests."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.requests = 0
        self.faults: Counter[str] = Counter()

    def __call__(self, body: dict[str, Any]) -> Any:
        from agentmesh.testing import Reply, ToolCall, cut, error
        from agentmesh.testing.offline_responder import offline_responder

        with self.lock:
            self.requests += 1
            kind = self.random.choice(FAULTS) if self.random.random() < self.rate else None
            if kind:
                self.faults[kind] += 1
        tools = [t["function"]["name"] for t in body.get("tools", [])]
        if kind == "429":
            return error(429, retry_after=0)
        if kind == "503":
            return error(503)
        if kind == "cut":
            return cut()
        if kind == "malformed_args":
            world = [t for t in tools if not t.startswith("submit_")] or tools
            return Reply(tool_calls=[ToolCall(name=world[0], arguments='{"service": "checkout-')])
        if kind == "invalid_output":
            answer = next((t for t in tools if t.startswith("submit_")), "submit_finding")
            return Reply(tool_calls=[ToolCall(name=answer, arguments={"summary": 42, "confidence": "high"})])
        return offline_responder(body)


def violations(world: Any, policy: Any, engine: Any) -> list[str]:
    """Everything in the world (and the audit of successful writes) that the policy forbids."""
    from sqlalchemy import select

    from agentmesh.persistence.tables import tool_calls

    found = []
    snap = world.snapshot()
    for service in snap["services"]:
        limits = policy.limits_for(service["name"])
        if not limits.min_replicas <= service["replicas"] <= limits.max_replicas:
            found.append(f"{service['name']} has {service['replicas']} replicas, outside "
                         f"{limits.min_replicas}..{limits.max_replicas}")
    if snap["total_hourly_cost_usd"] > policy.hourly_cost_ceiling_usd + 1e-9:
        found.append(f"hourly cost {snap['total_hourly_cost_usd']} above the ceiling {policy.hourly_cost_ceiling_usd}")
    for ticket in snap["tickets"]:
        if ticket["refund_total_usd"] > policy.refund_cap_usd + 1e-9:
            found.append(f"{ticket['id']} refunded {ticket['refund_total_usd']} above the cap {policy.refund_cap_usd}")
    if snap["refunds_total_usd"] > policy.daily_refund_budget_usd + 1e-9:
        found.append(f"refunds {snap['refunds_total_usd']} above the daily budget {policy.daily_refund_budget_usd}")
    for dataset in snap["datasets"]:
        if dataset["name"] in policy.protected_datasets and dataset.get("versions", 1) > 1:
            found.append(f"protected dataset {dataset['name']} was cleaned")
    with engine.connect() as conn:
        rows = conn.execute(select(tool_calls.c.args, tool_calls.c.result)
                            .where(tool_calls.c.tool == "scale_service", tool_calls.c.status == "ok")).all()
    for args, result in rows:
        limits = policy.limits_for(args["service"])
        before = (result or {}).get("replicas_before", (result or {}).get("from"))
        if isinstance(before, int) and abs(args["replicas"] - before) > limits.max_change_per_call:
            found.append(f"scale_service {args} changed more than {limits.max_change_per_call} at once")
    return found


def audit_completeness(engine: Any, results: list[dict[str, Any]]) -> tuple[int, int, list[str]]:
    """(tool calls with a final audit record, tool calls in the runs' JSON, the ids missing or unfinished)."""
    from agentmesh.persistence import audit

    total = complete = 0
    missing = []
    for result in results:
        records = {r.tool_call_id: r for r in audit.list_calls(engine, result["run_id"])}
        for step in result["steps"]:
            for call in step["tool_calls"]:
                total += 1
                record = records.get(call["id"])
                if record is not None and (record.status in audit.FINAL or record.approval == "pending"):
                    complete += 1
                else:
                    missing.append(f"{result['run_id'][:8]}/{call['id']}:{record.status if record else 'absent'}")
    return complete, total, missing


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    from agentmesh import arun_goal
    from agentmesh.core.settings import Settings
    from agentmesh.persistence.runs import run_result
    from agentmesh.plugins.operations.world import World
    from agentmesh.runtime.components import components
    from agentmesh.testing import OpenAIServer

    model = FaultyModel(args.fault_rate, args.seed)
    with OpenAIServer(responder=model) as server:
        settings = Settings(model="gpt-4o-mini", openai_api_key="sk-soak", openai_base_url=server.base_url,
                            model_retries=2, model_timeout_s=10, approvals="auto")
        parts = components(settings)
        parts.resources.get(World)
        gate = asyncio.Semaphore(args.concurrency)
        outcomes: list[dict[str, Any]] = []
        hung: list[str] = []
        crashed: list[str] = []
        goal_ids = [(i, GOALS[i % len(GOALS)]) for i in range(args.goals)]

        async def one(index: int, goal: str) -> None:
            async with gate:
                try:
                    outcomes.append(await asyncio.wait_for(arun_goal(goal, settings=settings), args.goal_timeout))
                except TimeoutError:
                    hung.append(f"#{index} {goal[:40]}")
                except Exception as exc:  # a goal whose run did not even return its JSON
                    crashed.append(f"#{index} {type(exc).__name__}: {str(exc)[:200]}")
                done = len(outcomes) + len(hung) + len(crashed)
                if args.progress and done % 10 == 0:
                    print(f"  {done}/{args.goals} goals ended", file=sys.stderr, flush=True)

        started = time.perf_counter()
        await asyncio.gather(*(one(i, g) for i, g in goal_ids))
        seconds = time.perf_counter() - started
        # Read every run back from the database: the recorded status, not only what the call returned.
        results = [run_result(parts.engine, r["run_id"]) for r in outcomes]
        statuses = Counter(r["status"] for r in results)
        complete, total, missing = audit_completeness(parts.engine, results)
        calls = [r["usage"]["model_calls"] for r in results]
        errors = Counter((r["error"] or "").split(" at http")[0].split(":")[0][:70] for r in results if r["error"])
        return {
            "goals": args.goals, "concurrency": args.concurrency, "fault_rate": args.fault_rate, "seed": args.seed,
            "completed": statuses.get("done", 0), "failed": statuses.get("failed", 0),
            "budget_exceeded": statuses.get("budget_exceeded", 0),
            "waiting_approval": statuses.get("waiting_approval", 0), "hung": len(hung),
            "crashed": len(crashed), "other_statuses": {k: v for k, v in statuses.items()
                                                        if k not in ("done", "failed", "budget_exceeded",
                                                                     "waiting_approval")},
            "limit_violations": violations(parts.resources.get(World), parts.resources.get(World).limits, parts.engine),
            "audit_complete_pct": round(100.0 * complete / total, 2) if total else 100.0,
            "tool_calls": total, "audit_missing": missing[:20],
            "model_requests": model.requests, "faults_injected": dict(model.faults),
            "model_calls_per_goal": {"mean": round(statistics.mean(calls), 2) if calls else 0,
                                     "median": statistics.median(calls) if calls else 0,
                                     "max": max(calls, default=0)},
            "failure_reasons": dict(errors.most_common(8)), "hung_goals": hung, "crashes": crashed[:10],
            "seconds": round(seconds, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--goals", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--goal-timeout", type=float, default=600.0, help="seconds before a goal counts as hung")
    parser.add_argument("--home", type=Path, default=None, help="AGENTMESH_HOME (default: a new temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--progress", action="store_true", help="report progress on stderr")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="agentmesh-soak-"))
    os.environ["AGENTMESH_HOME"] = str(home)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENTMESH_MODEL", "AGENTMESH_DATABASE_URL"):
        os.environ.pop(var, None)
    import logging

    logging.getLogger("agentmesh").setLevel(logging.ERROR)  # the retry warnings of 30% faults drown the report
    report = asyncio.run(soak(args))
    report["home"] = str(home)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:22} {value}")
    ok = (report["hung"] == 0 and report["crashed"] == 0 and not report["limit_violations"]
          and report["audit_complete_pct"] == 100.0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
