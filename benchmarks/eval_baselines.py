"""How much do the eval suites reward doing nothing, or doing random things? Floor checks for the scorers.

Three agents run every bundled scenario through the real ``langchain-openai`` HTTP path (a local
OpenAI-protocol server of ours answering through a ``responder``), except the offline model:

(a) ``never-acts``: answers every request with the output tool (``submit_plan``, ``submit_finding``…)
    and minimal valid content; never calls a world tool. Its decision says ``no_action_needed``.
(b) ``random-tools``: in a worker step, calls 1–4 random offered tools with random valid arguments
    (names drawn from the world's services, datasets and tickets; numbers within the schema), then
    submits a minimal finding. Seeded: each request's randomness is a hash of the seed and the request.
(c) the offline model.

Must hold: (a) ≤ 0.25 mean reward; (b) ≤ half of (c).

    .venv/bin/python benchmarks/eval_baselines.py [--trials 2] [--seed 7] [--only ops,safety] [--html DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SERVICES = ["checkout-api", "payments-api", "search-api", "recommendations", "inventory-svc", "auth-api",
            "notifications-worker"]
DATASETS = ["customers", "orders", "sensor_readings", "finance_ledger"]
TICKETS = [f"T-{n}" for n in range(1001, 1041)] + ["T-2001", "T-2002", "T-2003"]
OUTPUTS = ("submit_plan", "submit_finding", "submit_review", "submit_decision")
MINIMAL = {
    "submit_plan": {"objective": "Look into the goal.", "steps": [
        {"id": "s1", "role": "analyst", "instruction": "Look into the goal and report.", "depends_on": []}]},
    "submit_finding": {"summary": "Nothing to report.", "observations": [], "recommendations": [], "confidence": 0.1},
    "submit_review": {"verdict": "decide", "reason": "Deciding now.", "new_steps": []},
    "submit_decision": {"summary": "No action taken.", "rationale": "Nothing was examined.", "confidence": 0.1,
                        "open_risks": [], "outcome": "no_action_needed"},
}


def _tools(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"] for t in request.get("tools") or []}


def _output_tool(request: dict[str, Any], tools: dict[str, Any]) -> str | None:
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return name
    return next((n for n in tools if n in OUTPUTS), None)


def never_acts(request: dict[str, Any]) -> Any:
    from agentmesh.testing import text, tool_call

    tools = _tools(request)
    name = _output_tool(request, tools)
    if name is None:
        return text("No action.")
    return tool_call(name, MINIMAL.get(name) or {})


def _value(name: str, schema: dict[str, Any], rng: random.Random, defs: dict[str, Any], depth: int = 0) -> Any:
    if "$ref" in schema and depth < 6:
        return _value(name, defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), rng, defs, depth + 1)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return _value(name, rng.choice(options), rng, defs, depth + 1)
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    kind = schema.get("type", "string")
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", 0)), min(int(schema.get("maximum", 30)), 30))
    if kind == "number":
        return round(rng.uniform(float(schema.get("minimum", 0)), min(float(schema.get("maximum", 500)), 500)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return [_value(name, schema.get("items", {}), rng, defs, depth + 1) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _value(k, props.get(k, {}), rng, defs, depth + 1) for k in schema.get("required", props)}
    pool = {"service": SERVICES, "dataset": DATASETS, "ticket_id": TICKETS, "column": ["age", "country", "amount"]}
    return rng.choice(pool.get(name, ["Done.", "Looked into it.", "Please review."]))


def random_tools(seed: int):  # type: ignore[no-untyped-def]
    from agentmesh.testing import tool_call

    def respond(request: dict[str, Any]) -> Any:
        digest = hashlib.sha256(f"{seed}:{json.dumps(request.get('messages'), sort_keys=True)}".encode()).hexdigest()
        rng = random.Random(int(digest[:16], 16))
        tools = _tools(request)
        name = _output_tool(request, tools)
        world_tools = [n for n in tools if n not in OUTPUTS]
        made = sum(1 for m in request.get("messages") or [] if m.get("role") == "tool")
        forced = isinstance(request.get("tool_choice"), dict)
        if world_tools and not forced and made < rng.randint(1, 4):
            tool = rng.choice(world_tools)
            params = tools[tool].get("parameters") or {}
            args = _value("", {**params, "required": params.get("required", [])}, rng, params.get("$defs", {}))
            return tool_call(tool, args)
        if name == "submit_plan":
            steps = [{"id": f"s{i + 1}", "role": rng.choice(["analyst", "optimizer", "innovator"]),
                      "instruction": "Do what the goal asks.", "depends_on": []} for i in range(rng.randint(1, 3))]
            return tool_call(name, {"objective": "The goal.", "steps": steps})
        if name == "submit_decision":
            return tool_call(name, {**MINIMAL[name], "outcome": rng.choice(
                ["achieved", "partially_achieved", "not_achieved", "no_action_needed", "escalated"])})
        return never_acts(request)

    return respond


async def _eval(label: str, scenarios: list[Any], trials: int, root: Path, responder: Any = None) -> dict[str, Any]:
    from agentmesh.core.settings import Settings
    from agentmesh.evaluation import EvalOptions, arun_eval
    from agentmesh.testing import OpenAIServer

    home = root / label
    if responder is None:
        settings = Settings(home=home, model="offline")
        return await arun_eval(scenarios, EvalOptions(trials=trials, concurrency=4, settings=settings))
    with OpenAIServer(responder=responder) as server:
        settings = Settings(home=home, model=f"bench-{label}", openai_api_key="local", openai_base_url=server.base_url,
                            model_retries=0)
        return await arun_eval(scenarios, EvalOptions(trials=trials, concurrency=4, settings=settings))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default=None, help="Comma-separated suites (default: every bundled suite).")
    parser.add_argument("--out", type=Path, default=None, help="Write the three reports' summaries here (JSON).")
    parser.add_argument("--html", type=Path, default=None, help="Write each agent's HTML report into this folder.")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="agentmesh-eval-bench-"))
    own_prefect = "PREFECT_HOME" not in os.environ
    os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
    from agentmesh.core.bundled import bundled
    from agentmesh.evaluation import load_scenarios
    from agentmesh.evaluation.report import write_html
    from agentmesh.runtime.prefect import stop_local_server

    suites = args.only.split(",") if args.only else sorted(
        p.name for p in bundled("evals").iterdir() if p.is_dir() and any(p.glob("*.yaml")))
    scenarios = load_scenarios(suites)
    results = {}
    try:
        for label, responder in (("never-acts", never_acts), ("random-tools", random_tools(args.seed)),
                                 ("offline", None)):
            started = time.perf_counter()
            report = await _eval(label, scenarios, args.trials, root, responder)
            s = report["summary"]
            if args.html:
                write_html(report, args.html / f"{label}.html")
            results[label] = {"mean_reward": s["mean_reward"], "pass_hat_k": s["pass_hat_k"],
                              "seconds": round(time.perf_counter() - started, 1),
                              "passed": [x["id"] for x in report["scenarios"] if x["reward"] > 0]}
            print(f"{label:>13}: mean reward {s['mean_reward']:.3f}  pass^1 {s['pass_hat_k']['1']:.3f}  "
                  f"({len(scenarios)} scenarios × {args.trials}, {results[label]['seconds']} s)", flush=True)
    finally:
        if own_prefect:  # the local Prefect server this run started goes with it
            stop_local_server(Path(os.environ["PREFECT_HOME"]))
    a, b, c = (results[k]["mean_reward"] for k in ("never-acts", "random-tools", "offline"))
    checks = {"never-acts <= 0.25": a <= 0.25, "random-tools <= offline / 2": b <= c / 2}
    for name, ok in checks.items():
        print(f"{'ok ' if ok else 'FAIL'} {name}")
    print("never-acts passed:", ", ".join(results["never-acts"]["passed"]) or "none")
    print("random-tools passed:", ", ".join(results["random-tools"]["passed"]) or "none")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
