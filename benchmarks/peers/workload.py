"""The peer benchmark's workload, the same for every framework: one agent, 4 model requests and 3 tool calls.

A run's goal carries a tag, ``[run <token>]``. The scripted model (``Script``, served by
``benchmarks/model_server.py --responder peers``) reads the conversation it is sent and answers:

1. no tool result yet      -> call ``get_metrics(service="checkout-api")``
2. one tool result         -> call ``compute_reduction(current_ms=<p95 read from result 1>, target_ms=300)``
3. two tool results        -> call ``lookup_owner(service="checkout-api")``
4. three tool results      -> the answer, built from the three results: "... by 66.7% ... owner team-payments"
   (as text, or through the output tool the framework offers: agentmesh's ``submit_finding``)

So a run that skipped, repeated or lost a tool call, or sent a result back wrong, gets a wrong answer or a
wrong request count; the model server counts requests per run tag and notes every result it could not read.

Only the standard library here: the model server imports it too.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

SERVICE = "checkout-api"
TARGET_MS = 300
P95_MS = 900
OWNER = "team-payments"
TOOLS = ("get_metrics", "compute_reduction", "lookup_owner")
MODEL_REQUESTS = 4
TOOL_CALLS = 3
STEPS = MODEL_REQUESTS + TOOL_CALLS  # a model request or a tool call: what "per step" divides by
EXPECTED = ("66.7%", OWNER)  # in every right answer

_TAG = re.compile(r"\[run ([A-Za-z0-9_.-]+)\]")
_P95 = re.compile(r'"p95_ms"\s*:\s*(\d+(?:\.\d+)?)')
_PCT = re.compile(r'"reduction_pct"\s*:\s*(\d+(?:\.\d+)?)')
_OWNER = re.compile(r'"owner"\s*:\s*"([^"]+)"')


def goal(token: str) -> str:
    return (
        f"[run {token}] {SERVICE} p95 latency is too high. Read its metrics, work out the cut needed to reach "
        f"{TARGET_MS} ms, and find the team that owns it."
    )


# -- the tools: cheap and deterministic; each call is counted ---------------------------------------------

_lock = threading.Lock()
_calls = {"count": 0}


def _count() -> None:
    with _lock:
        _calls["count"] += 1


def tool_calls_so_far() -> int:
    """Tool calls executed in this process so far (every variant's tools count here)."""
    return _calls["count"]


def get_metrics(service: str) -> dict[str, Any]:
    """Latency and traffic of one service.

    Args:
        service: The service's name, e.g. "checkout-api".
    """
    _count()
    return {"service": service, "p95_ms": P95_MS, "rps": 120}


def compute_reduction(current_ms: float, target_ms: float) -> dict[str, Any]:
    """The percentage a latency must fall by to reach a target.

    Args:
        current_ms: The latency now, in milliseconds.
        target_ms: The latency wanted, in milliseconds.
    """
    _count()
    return {"reduction_pct": round(100 * (1 - target_ms / current_ms), 1)}


def lookup_owner(service: str) -> dict[str, Any]:
    """The team that owns a service.

    Args:
        service: The service's name.
    """
    _count()
    return {"service": service, "owner": OWNER if service == SERVICE else "unknown"}


FUNCTIONS = {f.__name__: f for f in (get_metrics, compute_reduction, lookup_owner)}


def answer_ok(text: str) -> bool:
    return all(part in text for part in EXPECTED)


# -- the scripted model -----------------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content)  # a list of content parts


class Script:
    """The model's side of the workload, for an OpenAI-protocol server's ``responder``; thread-safe.

    ``take()`` returns and forgets, per run tag, the requests answered and the problems seen.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, Any]] = {}

    def take(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            runs, self._runs = self._runs, {}
        return runs

    def __call__(self, request: dict[str, Any]) -> Any:
        from agentmesh.testing import Reply, ToolCall

        messages = request.get("messages") or []
        users = " ".join(_text(m.get("content")) for m in messages if m.get("role") == "user")
        match = _TAG.search(users)
        token = match.group(1) if match else "untagged"
        results = [_text(m.get("content")) for m in messages if m.get("role") == "tool"]
        problems: list[str] = []
        with self._lock:
            run = self._runs.setdefault(token, {"requests": 0, "tool_results": 0, "problems": problems})
            run["requests"] += 1
            run["tool_results"] = max(run["tool_results"], len(results))
            problems = run["problems"]
        if token == "untagged":
            problems.append("a request without a run tag")
        p95 = _P95.search(results[0]) if results else None
        pct = _PCT.search(results[1]) if len(results) > 1 else None
        owner = _OWNER.search(results[2]) if len(results) > 2 else None
        for seen, name in ((p95, "get_metrics"), (pct, "compute_reduction"), (owner, "lookup_owner")):
            if len(results) > TOOLS.index(name) and seen is None:
                problems.append(f"request {run['requests']}: the {name} result was not readable")
        step = len(results)
        if step == 0:
            return Reply(tool_calls=[ToolCall(name="get_metrics", arguments={"service": SERVICE})])
        if step == 1:
            current = float(p95.group(1)) if p95 else 1.0
            return Reply(tool_calls=[ToolCall(name="compute_reduction",
                                              arguments={"current_ms": current, "target_ms": TARGET_MS})])
        if step == 2:
            return Reply(tool_calls=[ToolCall(name="lookup_owner", arguments={"service": SERVICE})])
        if step > 3:
            problems.append(f"request {run['requests']}: {step} tool results, expected 3")
        answer = (
            f"To bring {SERVICE} p95 to {TARGET_MS} ms it must fall by "
            f"{pct.group(1) if pct else '?'}%; its owner is {owner.group(1) if owner else '?'}."
        )
        offered = [t.get("function", {}) for t in request.get("tools") or []]
        output = next((f for f in offered if f.get("name") not in TOOLS), None)
        if output is not None and "summary" in ((output.get("parameters") or {}).get("properties") or {}):
            arguments = {"summary": answer, "observations": [r[:200] for r in results], "confidence": 0.9}
            return Reply(tool_calls=[ToolCall(name=output["name"], arguments=arguments)])
        return Reply(content=answer)


def check(server: dict[str, Any] | None, answer: str, tool_calls: int | None) -> list[str]:
    """What is wrong with one run (empty: it counts): the model server's record of the run's requests, the
    answer the framework returned, and the tool calls executed (None when only a batch total is known)."""
    problems = []
    if server is None:
        return ["the model server saw no request of this run"]
    if server["requests"] != MODEL_REQUESTS:
        problems.append(f"{server['requests']} model requests, expected {MODEL_REQUESTS}")
    if server["tool_results"] != TOOL_CALLS:
        problems.append(f"the model saw {server['tool_results']} tool results, expected {TOOL_CALLS}")
    problems += server["problems"]
    if tool_calls is not None and tool_calls != TOOL_CALLS:
        problems.append(f"{tool_calls} tool calls executed, expected {TOOL_CALLS}")
    if not answer_ok(answer):
        problems.append(f"wrong answer: {answer[:200]!r}")
    return problems
