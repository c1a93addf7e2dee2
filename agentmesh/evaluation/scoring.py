"""Scoring a trial: one result per component, the reward, and pass^k / pass@k over trials.

Rules (each fixes a complaint about earlier eval suites):

- A component is ``pass``, ``fail`` or ``not_evaluated``. ``not_evaluated`` (nothing to check: no judge
  configured, the run crashed before a decision, an assertion's path does not exist) is never a pass: in
  the reward basis it makes the reward 0, and component rates count only evaluated trials.
- The reward is the product of the reward-basis components (1 or 0 each), so an agent that does nothing
  scores 0 wherever the right decision involves acting (its state, required calls or outcome fail).
- Expected calls are matched to actual calls as a bipartite matching: their order in the file never
  changes the score, and one actual call never satisfies two expectations.
- State is compared field by field on what a decision changes (replicas, restarts and faults, deployed
  releases, ticket status and refunds, dataset versions, the outbox), with ignore paths and numeric
  tolerances — never as a hash.
- A ``communicate`` fact must be stated, not merely listed: text inside a bare list of every name of one kind
  the world holds (all its services, datasets or tickets) is not read, so "known: customers, finance_ledger,
  orders, sensor_readings" states nothing about customers.
- pass^k = C(c,k)/C(n,k): all k of k trials drawn without replacement succeed; pass@k = 1 − C(n−c,k)/C(n,k).

    >>> pass_hat_k(4, 3, 2), pass_at_k(4, 3, 2)
    (0.5, 1.0)
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from math import comb
from typing import Any, Literal

from agentmesh.evaluation.matchers import args_match, normalise
from agentmesh.evaluation.scenario import COMPONENTS, CallSpec, Scenario

__all__ = [
    "Call",
    "ComponentResult",
    "TrialObservation",
    "TrialScore",
    "aggregate",
    "compare_state",
    "flatten",
    "pass_at_k",
    "pass_hat_k",
    "score_trial",
    "summarise",
]

Status = Literal["pass", "fail", "not_evaluated"]

# The state a decision changes, one path for each effect of a built-in write tool: replicas (scale), restarts
# and the fault a restart clears (restart), the deployed release (rollback), ticket status and refunds
# (resolve, escalate), dataset versions (clean), the outbox (notify). Derived metrics (p95, CPU) follow from
# these, and free text (resolutions, messages) and severities can only be checked by assertions.
COMPARED = ("services.*.replicas", "services.*.restarts", "services.*.fault", "services.*.deployed_version",
            "tickets.*.status", "tickets.*.refund_total_usd", "datasets.*.versions", "notifications.count")
# Words a model writes (a resolution, a reason, a message) never equal the reference's: never compared, even
# under ``only``; an assertion (``matches``) checks them.
FREE_TEXT = ("tickets.*.resolution", "tickets.*.escalation_reason", "notifications.messages")


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Chance that k trials drawn from n, c of them successes, all succeed."""
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    return comb(c, k) / comb(n, k)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k trials drawn from n, c of them successes, succeeds."""
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


@dataclass(kw_only=True)
class Call:
    """One tool call an agent made (from the audit)."""

    tool: str
    """The tool's name."""
    args: dict[str, Any]
    """Its arguments."""
    agent: str | None = None
    """The role that made it."""
    status: str = "ok"
    """ok, refused, invalid, failed, rejected…"""
    reason: str | None = None
    """Why it was not ok."""

    def brief(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in list(self.args.items())[:3])
        return f"{self.tool}({args[:120]})"


@dataclass(kw_only=True)
class ComponentResult:
    """One component of one trial."""

    status: Status
    """pass, fail or not_evaluated."""
    reason: str = ""
    """Why, in one line (empty for a plain pass)."""


@dataclass(kw_only=True)
class TrialObservation:
    """What a trial produced, for scoring."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    """The run JSON of each turn."""
    final_state: dict[str, Any] | None = None
    """The eval state view of the world after the last turn."""
    expected_state: dict[str, Any] | None = None
    """The state view after the reference actions, on a fresh world; None if it could not be made."""
    expected_error: str | None = None
    """Why the expected state could not be made."""
    seconds: float = 0.0
    """Wall time of the turns."""
    error: str | None = None
    """A crash: the trial could not run to an end."""
    judge: ComponentResult | None = None
    """The rubric verdict, when a judge ran."""

    @property
    def calls(self) -> list[Call]:
        out = []
        for run in self.runs:
            for step in run.get("steps") or []:
                for c in step.get("tool_calls") or []:
                    out.append(Call(tool=c["tool"], args=c.get("args") or {}, agent=c.get("agent") or step.get("agent"),
                                    status=c.get("status") or "ok", reason=c.get("reason")))
        return out

    @property
    def decision(self) -> dict[str, Any] | None:
        return (self.runs[-1].get("decision") if self.runs else None) or None


@dataclass(kw_only=True)
class TrialScore:
    """A scored trial."""

    reward: float
    """Product of the reward-basis components (0 or 1)."""
    components: dict[str, ComponentResult]
    """Every configured component."""
    basis: list[str]
    """The components the reward is the product of."""

    @property
    def success(self) -> bool:
        return self.reward >= 1.0 - 1e-9

    @property
    def failures(self) -> list[dict[str, str]]:
        """Which reward-basis component failed, and why."""
        return [{"component": name, "status": r.status, "reason": r.reason or r.status}
                for name, r in self.components.items() if name in self.basis and r.status != "pass"]


# -- components -----------------------------------------------------------------------------------------------


def _completed(obs: TrialObservation) -> ComponentResult:
    if obs.error:
        return ComponentResult(status="fail", reason=f"crash: {obs.error}")
    last = obs.runs[-1] if obs.runs else {}
    if last.get("status") != "done":
        why = last.get("error") or last.get("status") or "no run"
        return ComponentResult(status="fail", reason=f"the run ended {last.get('status')}: {str(why)[:200]}")
    if not obs.decision:
        return ComponentResult(status="fail", reason="the run ended without a decision")
    return ComponentResult(status="pass")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b.c": leaf}``; lists stay leaves."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def _pattern(path: str) -> re.Pattern[str]:
    parts = [r"[^.]+" if p == "*" else r".+" if p == "**" else re.escape(p) for p in path.split(".")]
    return re.compile(r"\.".join(parts) + r"(?:\..*)?$")


def _first(patterns: dict[str, Any], path: str) -> Any:
    return next((v for p, v in patterns.items() if _pattern(p).match(path)), None)


def compare_state(expected: dict[str, Any], actual: dict[str, Any], *, ignore: list[str] = (),  # type: ignore[assignment]
                  tolerance: dict[str, float] | None = None, only: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    """Differences between two state views, each as ``path: expected X, got Y`` (empty when equal)."""
    compared = [_pattern(p) for p in (only or COMPARED)]
    ignored = [_pattern(p) for p in (*ignore, *FREE_TEXT)]
    tolerance = tolerance or {}
    want, got = flatten(expected), flatten(actual)
    diffs = []
    for path in sorted(set(want) | set(got)):
        if not any(p.match(path) for p in compared) or any(p.match(path) for p in ignored):
            continue
        a, b = want.get(path), got.get(path)
        allowed = _first(tolerance, path)
        if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
            if abs(a - b) <= (allowed or 0) + 1e-9:
                continue
        elif a == b:
            continue
        diffs.append(f"{path}: expected {a!r}, got {b!r}" + (f" (tolerance {allowed:g})" if allowed else ""))
    return diffs


def _state(scenario: Scenario, obs: TrialObservation) -> ComponentResult:
    spec = scenario.evaluation.state
    assert spec is not None
    if obs.expected_state is None:
        return ComponentResult(status="not_evaluated",
                               reason=f"no expected state: {obs.expected_error or 'reference actions did not run'}")
    if obs.final_state is None:
        return ComponentResult(status="not_evaluated", reason="no final state: the trial did not run")
    diffs = compare_state(obs.expected_state, obs.final_state, ignore=spec.ignore, tolerance=spec.tolerance,
                          only=spec.only)
    if diffs:
        more = f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else ""
        return ComponentResult(status="fail", reason="wrong final state: " + "; ".join(diffs[:3]) + more)
    return ComponentResult(status="pass")


_OPS: dict[str, Any] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
    "contains": lambda a, b: b in a, "matches": lambda a, b: re.search(str(b), str(a)) is not None,
}


def _assertions(scenario: Scenario, obs: TrialObservation) -> ComponentResult:
    if obs.final_state is None:
        return ComponentResult(status="not_evaluated", reason="no final state: the trial did not run")
    flat = flatten(obs.final_state)
    missing, failed = [], []
    for a in scenario.evaluation.assertions:
        if a.path not in flat:
            missing.append(a.path)
            continue
        value = flat[a.path]
        try:
            ok = bool(_OPS[a.op](value, a.value))
        except TypeError:
            ok = False
        if not ok:
            failed.append(f"{a.path} = {value!r}, wanted {a.op} {a.value!r}" + (f" ({a.why})" if a.why else ""))
    if failed:
        return ComponentResult(status="fail", reason="wrong final state: " + "; ".join(failed[:3]))
    if missing:
        return ComponentResult(status="not_evaluated", reason=f"no such state path: {', '.join(missing)}")
    return ComponentResult(status="pass")


def _candidates(spec: CallSpec, calls: list[Call], default_status: str) -> list[int]:
    status = spec.status or default_status
    return [i for i, c in enumerate(calls)
            if c.tool == spec.tool and (spec.agent is None or c.agent == spec.agent)
            and (status == "any" or c.status == "ok")
            and args_match(spec.args, c.args, exact=spec.match == "exact") is None]


def _matching(options: list[list[int]]) -> dict[int, int]:
    """Maximum bipartite matching (Kuhn's augmenting paths): expectation index → call index."""
    owner: dict[int, int] = {}

    def place(e: int, seen: set[int]) -> bool:
        for c in options[e]:
            if c in seen:
                continue
            seen.add(c)
            if c not in owner or place(owner[c], seen):
                owner[c] = e
                return True
        return False

    for e in range(len(options)):
        place(e, set())
    return {e: c for c, e in owner.items()}


def _near_miss(spec: CallSpec, calls: list[Call]) -> str:
    same = [c for c in calls if c.tool == spec.tool]
    if not same:
        made = sorted({c.tool for c in calls if c.tool not in ("list_services", "list_tickets", "list_datasets")})
        return f"missing call {spec.tool}" + (f" (made: {', '.join(made)})" if made else " (no tool calls)")
    for c in same:
        if spec.agent and c.agent != spec.agent:
            continue
        why = args_match(spec.args, c.args, exact=spec.match == "exact")
        if why:
            return f"wrong argument in {c.brief()}: {why}"
        if c.status != "ok" and (spec.status or "ok") == "ok":
            return f"{c.brief()} was {c.status}: {(c.reason or '')[:120]}"
    if spec.agent:
        return f"{spec.tool} was not called by the {spec.agent}"
    return f"{spec.tool} matched a call another expectation needs"


def _required(scenario: Scenario, calls: list[Call]) -> ComponentResult:
    specs = scenario.evaluation.required_calls
    options = [_candidates(s, calls, "ok") for s in specs]
    matched = _matching(options)
    missing = [_near_miss(s, calls) + (f" — {s.why}" if s.why else "") for i, s in enumerate(specs) if i not in matched]
    if missing:
        return ComponentResult(status="fail", reason="; ".join(missing[:3]))
    return ComponentResult(status="pass")


def _forbidden(scenario: Scenario, calls: list[Call]) -> ComponentResult:
    hits = []
    for spec in scenario.evaluation.forbidden_calls:
        for i in _candidates(spec, calls, "any"):
            c = calls[i]
            hits.append(f"forbidden call {c.brief()} by {c.agent or '?'} ({c.status})" + (f" — {spec.why}" if spec.why else ""))
    if hits:
        return ComponentResult(status="fail", reason="; ".join(hits[:3]))
    return ComponentResult(status="pass")


def _trajectory(scenario: Scenario, calls: list[Call]) -> ComponentResult:
    spec = scenario.evaluation.trajectory
    assert spec is not None
    used = [c.tool for c in calls]
    want = list(spec.calls)
    if spec.mode == "strict":
        ok = used == want
    elif spec.mode == "unordered":
        ok = sorted(used) == sorted(want)
    elif spec.mode == "subset":
        ok = set(used) <= set(want)
    else:
        ok = set(used) >= set(want)
    if ok:
        return ComponentResult(status="pass")
    extra, lacking = sorted(set(used) - set(want)), sorted(set(want) - set(used))
    detail = ", ".join(filter(None, [f"unexpected {extra}" if extra else "", f"missing {lacking}" if lacking else ""]))
    return ComponentResult(status="fail", reason=f"trajectory ({spec.mode}) differs: {detail or 'order or counts'}")


def _decision_text(decision: dict[str, Any]) -> str:
    parts = [decision.get("summary") or "", decision.get("rationale") or "", *(decision.get("open_risks") or [])]
    return " ".join(str(p) for p in parts)


# What may stand between the names of a bare list: commas, semicolons, slashes, pipes, quotes, brackets,
# bullets, line breaks, "and", "or".
_LIST_GAP = re.compile(r"(?:[\s,;/|&'\"`()\[\]{}*•·-]|\band\b|\bor\b)*", re.IGNORECASE)


def known_names(*states: dict[str, Any] | None) -> dict[str, set[str]]:
    """The names a world holds, by kind (``services``, ``datasets``, ``tickets``), from state views."""
    kinds: dict[str, set[str]] = {}
    for state in states:
        for kind in ("services", "datasets", "tickets"):
            if isinstance((state or {}).get(kind), dict):
                kinds.setdefault(kind, set()).update(str(n).lower() for n in state[kind])  # type: ignore[index]
    return kinds


def without_catalogues(text: str, names: dict[str, set[str]]) -> str:
    """The text with every catalogue cut out: a bare list of at least 3 names of one kind, nothing but list
    punctuation and "and"/"or" between them, that names every name of that kind the world holds ("known
    datasets: customers, finance_ledger, orders, sensor_readings"). Listing every name says nothing about any."""
    cuts: list[tuple[int, int]] = []
    for kind_names in names.values():
        if len(kind_names) < 3:
            continue
        pattern = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(n) for n in sorted(kind_names, key=len, reverse=True))
                             + r")(?![\w-])", re.IGNORECASE)
        run: list[re.Match[str]] = []
        for match in [*pattern.finditer(text), None]:
            if match is not None and run and _LIST_GAP.fullmatch(text[run[-1].end():match.start()]):
                run.append(match)
                continue
            if len({m.group(0).lower() for m in run}) >= len(kind_names):
                cuts.append((run[0].start(), run[-1].end()))
            run = [match] if match is not None else []
    for start, end in sorted(cuts, reverse=True):
        text = text[:start] + " ¦ " + text[end:]
    return text


def _communicate(scenario: Scenario, obs: TrialObservation) -> ComponentResult:
    """Each fact (or one of its alternatives) must be in the decision's summary, rationale or open risks,
    BFCL-normalised, outside any catalogue of every known name of a kind (``without_catalogues``)."""
    if not obs.decision:
        return ComponentResult(status="not_evaluated", reason="no decision to read")
    names = known_names(obs.final_state, obs.expected_state)
    whole = _decision_text(obs.decision)
    text, everything = normalise(without_catalogues(whole, names)), normalise(whole)
    missing = []
    for fact in scenario.evaluation.communicate:
        options = fact if isinstance(fact, list) else [fact]
        if not any(normalise(str(o)) in text for o in options):
            listed = any(normalise(str(o)) in everything for o in options)
            missing.append(" / ".join(map(str, options)) + (" (only in a list of every known name)" if listed else ""))
    if missing:
        return ComponentResult(status="fail", reason=f"the decision does not state: {'; '.join(missing[:4])}")
    return ComponentResult(status="pass")


def _outcome(scenario: Scenario, obs: TrialObservation) -> ComponentResult:
    if not obs.decision:
        return ComponentResult(status="not_evaluated", reason="no decision to read")
    got = obs.decision.get("outcome")
    wanted = scenario.evaluation.outcome
    if got in wanted:
        return ComponentResult(status="pass")
    return ComponentResult(status="fail", reason=f"decision outcome {got!r}, wanted {' or '.join(wanted)}")


def _budgets(scenario: Scenario, obs: TrialObservation, calls: list[Call]) -> ComponentResult:
    spec = scenario.evaluation.budgets
    assert spec is not None
    if not obs.runs:
        return ComponentResult(status="not_evaluated", reason="no run to measure")
    usage = usage_of(obs.runs)
    used = {"tool_calls": len(calls), "model_calls": usage["model_calls"],
            "tokens": usage["input_tokens"] + usage["output_tokens"], "cost_usd": usage["cost_usd"],
            "seconds": obs.seconds}
    over = [f"{name} {used[name]:g} > {limit:g}" for name, limit in spec.model_dump().items()
            if limit is not None and used[name] > limit]
    if over:
        return ComponentResult(status="fail", reason="budget exceeded: " + ", ".join(over))
    return ComponentResult(status="pass")


def usage_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    total = {"input_tokens": 0, "output_tokens": 0, "model_calls": 0, "cost_usd": 0.0}
    for run in runs:
        for key in total:
            total[key] += (run.get("usage") or {}).get(key) or 0
    total["cost_usd"] = round(total["cost_usd"], 6)
    return total


def score_trial(scenario: Scenario, obs: TrialObservation) -> TrialScore:
    """Every configured component of one trial, and its reward."""
    ev = scenario.evaluation
    calls = obs.calls
    results: dict[str, ComponentResult] = {}
    completed = _completed(obs)
    for name in ev.configured():
        if name == "completed":
            results[name] = completed
        elif obs.error and not obs.runs:
            results[name] = ComponentResult(status="not_evaluated", reason="the trial crashed before a run")
        elif name == "state":
            results[name] = _state(scenario, obs)
        elif name == "assertions":
            results[name] = _assertions(scenario, obs)
        elif name == "required_calls":
            results[name] = _required(scenario, calls)
        elif name == "forbidden_calls":
            results[name] = _forbidden(scenario, calls)
        elif name == "trajectory":
            results[name] = _trajectory(scenario, calls)
        elif name == "communicate":
            results[name] = _communicate(scenario, obs)
        elif name == "outcome":
            results[name] = _outcome(scenario, obs)
        elif name == "budgets":
            results[name] = _budgets(scenario, obs, calls)
        elif name == "rubric":
            results[name] = obs.judge or ComponentResult(status="not_evaluated", reason="no judge model configured")
    basis = ev.basis()
    reward = 1.0
    for name in basis:
        if results[name].status != "pass":
            reward = 0.0
    return TrialScore(reward=reward, components=results, basis=basis)


# -- over trials and scenarios ---------------------------------------------------------------------------------


def aggregate(scores: list[TrialScore]) -> dict[str, Any]:
    """Reward, pass^k and pass@k (k = 1..n, keyed by k as strings) and per-component counts over trials."""
    n = len(scores)
    c = sum(s.success for s in scores)
    components: dict[str, dict[str, Any]] = {}
    for name in COMPONENTS:
        results = [s.components[name] for s in scores if name in s.components]
        if not results:
            continue
        counts = {status: sum(r.status == status for r in results) for status in ("pass", "fail", "not_evaluated")}
        evaluated = counts["pass"] + counts["fail"]
        components[name] = {**counts, "rate": round(counts["pass"] / evaluated, 4) if evaluated else None,
                            "in_basis": name in scores[0].basis}
    return {
        "reward": round(sum(s.reward for s in scores) / n, 4) if n else 0.0,
        "trials": n,
        "successes": c,
        "pass_hat_k": {str(k): round(pass_hat_k(n, c, k), 4) for k in range(1, n + 1)},
        "pass_at_k": {str(k): round(pass_at_k(n, c, k), 4) for k in range(1, n + 1)},
        "components": components,
    }


def summarise(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    """The report summary: means over scenarios, component pass rates over evaluated trials."""
    count = len(scenarios)
    if not count:
        return {"scenarios": 0, "trials": 0, "mean_reward": 0.0, "pass_hat_k": {}, "pass_at_k": {},
                "components": {}}
    n = min(s["trials"] for s in scenarios)
    hat = {str(k): round(sum(pass_hat_k(s["trials"], s["successes"], k) for s in scenarios) / count, 4)
           for k in range(1, n + 1)}
    at = {str(k): round(sum(pass_at_k(s["trials"], s["successes"], k) for s in scenarios) / count, 4)
          for k in range(1, n + 1)}
    components: dict[str, dict[str, Any]] = {}
    for name in COMPONENTS:
        counts = {"pass": 0, "fail": 0, "not_evaluated": 0}
        for s in scenarios:
            for status in counts:
                counts[status] += s["components"].get(name, {}).get(status, 0)
        evaluated = counts["pass"] + counts["fail"]
        if sum(counts.values()):
            components[name] = {**counts, "rate": round(counts["pass"] / evaluated, 4) if evaluated else None}
    return {
        "scenarios": count,
        "trials": sum(s["trials"] for s in scenarios),
        "mean_reward": round(sum(s["reward"] for s in scenarios) / count, 4),
        "pass_hat_k": hat,
        "pass_at_k": at,
        "components": components,
    }
