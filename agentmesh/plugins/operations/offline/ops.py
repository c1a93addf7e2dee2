"""Rules for service steps: find the service, read its metrics, restart or roll back what a fault or a release
broke, else choose a replica count and scale; verify."""

from __future__ import annotations

import math
import re
from typing import Any

from agentmesh.models.offline.conversation import (
    Call,
    Conversation,
    best_match,
    find_number,
    items_in,
    names_in,
)
from agentmesh.plugins.operations.offline.goals import _OPS_NAME, GoalReading, read_goal

__all__ = ["ops_finding", "ops_next", "service_of"]

MAX_SIMULATIONS = 3  # with the listing, the read and the change: within 6 tool rounds
REPAIR_TOOLS = ("restart_service", "rollback_service")
# Where a service counts as degraded (as the services world's statuses do) and memory as full (a leak).
ERROR_RATE_DEGRADED, P95_DEGRADED_MS, MEMORY_FULL_PCT = 0.02, 500.0, 90.0
# Utilisation the proportional estimate aims for: queueing delay grows sharply above it.
TARGET_UTILISATION_PCT = 70.0


def _view(result: Any, *prefer: str) -> dict[str, Any]:
    """The part of a result that describes the state of interest (``simulated``, ``after``), else the result."""
    if not isinstance(result, dict):
        return {}
    for key in prefer:
        if isinstance(result.get(key), dict):
            return result[key]
    return result


def metrics(result: Any, *prefer: str) -> dict[str, float | None]:
    r = _view(result, *prefer)
    return {
        "p95": find_number(r, "p95_ms", "p95_latency_ms", contains="p95"),
        "cpu": find_number(r, "cpu_pct", "cpu", contains="cpu"),
        "errors": find_number(r, "error_rate", contains="error"),
        "replicas": find_number(r, "replicas", "replica_count", "current_replicas", contains="replica",
                                exclude=("min", "max", "change", "previous", "capacity")),
        "cost": find_number(r, "hourly_cost", "hourly_cost_usd", "cost_per_hour"),
        "min": find_number(result, "min_replicas"),
        "max": find_number(result, "max_replicas"),
        "step": find_number(result, "max_change_per_call"),
        "slo": find_number(r, "slo_ms", "p95_target_ms", "target_p95_ms", contains="slo"),
    }


def _context(conv: Conversation) -> str:
    return " ".join((conv.goal, conv.instruction, conv.sections.get("Findings so far", "")))


def service_of(conv: Conversation, goal: GoalReading) -> str | Call | None:
    """The service the step is about, or the call that would find it out, or None when nothing fits."""
    for obs in conv.calls("get_service_metrics"):
        if obs.ok and isinstance(obs.args.get("service"), str):
            return obs.args["service"]
    listing = conv.last_ok("list_services")
    if listing is not None:
        names = names_in(listing.result)
        # The goal and the step name the service; earlier findings may mention every service listed.
        match = best_match(names, f"{conv.goal} {conv.instruction}") or best_match(names, _context(conv))
        if match or len(names) != 1:
            return match or _worst(listing.result, goal)
        return names[0]
    failed = {o.args.get("service") for o in conv.calls("get_service_metrics")}
    # The goal's names first; a step's instruction may name the service when the goal does not.
    named = goal.entities or tuple(_OPS_NAME.findall(conv.instruction.lower()))
    candidates = [e for e in named if e not in failed]
    if candidates and conv.offered("get_service_metrics"):
        return candidates[0]
    if conv.offered("list_services") and not conv.calls("list_services"):
        return conv.call("list_services")
    return None


def _worst(listing: Any, goal: GoalReading) -> str | None:
    """With no service named, the one the goal's words point at: slowest for latency, priciest for cost."""
    items = [i for i in items_in(listing) if isinstance(i, dict) and isinstance(i.get("name"), str)]
    key = "hourly_cost" if goal.wants_cost_cut else "p95_ms"
    scored = [(find_number(i, key) or 0.0, i["name"]) for i in items]
    scored = [s for s in scored if s[0] > 0]
    return max(scored)[1] if scored and (goal.latency_ms or goal.wants_cost_cut or goal.act) else None


def limits_from(text: str) -> tuple[int | None, int | None]:
    """The replica range a refusal or policy problem states: "between 2 and 12", "so 1..9 now", "at most 7"."""
    low, high = None, None
    for a, b in re.findall(r"between (\d+) and (\d+)", text) + re.findall(r"(\d+)\s*\.\.\s*(\d+)", text):
        low, high = max(low or 0, int(a)), min(high or 10**6, int(b))
    for n in re.findall(r"(?:fits|allows?|up to|at most|maximum of|max(?:imum)?(?:_replicas)?)\s*(\d+) replicas?", text):
        high = min(high or 10**6, int(n))
    return low, high


def _simulations(conv: Conversation, service: str) -> dict[int, dict[str, Any]]:
    sims: dict[int, dict[str, Any]] = {}
    for obs in conv.calls("simulate_scaling"):
        r = obs.args.get("replicas")
        if obs.ok and obs.args.get("service") == service and isinstance(r, int):
            m = metrics(obs.result, "simulated", "after")
            problems = obs.result.get("policy_problems") if isinstance(obs.result, dict) else None
            sims[r] = {"p95": m["p95"], "cpu": m["cpu"], "problems": " ".join(map(str, problems or []))}
    return sims


def _bounds(conv: Conversation, goal: GoalReading, m: dict[str, float | None], service: str) -> tuple[int, int]:
    current = int(m["replicas"] or 1)
    low, high = int(m["min"] or 1), int(m["max"] or max(current * 4, 8))
    if m["step"]:
        low, high = max(low, current - int(m["step"])), min(high, current + int(m["step"]))
    ceiling = goal.replica_ceiling(current)
    # A constraint the plan put in the step ("at most 6 replicas", e.g. from a past decision) binds as well.
    step_cap = read_goal(conv.instruction).max_replicas if conv.instruction else None
    if step_cap is not None:
        ceiling = step_cap if ceiling is None else min(ceiling, step_cap)
    if ceiling is not None:
        high = min(high, ceiling)
    texts = [o.error for o in conv.calls("scale_service") if not o.ok]
    texts += [s["problems"] for s in _simulations(conv, service).values()]
    for text in texts:
        lo, hi = limits_from(text)
        low, high = max(low, lo or low), min(high, hi or high)
    return low, max(low, high)


def latency_target(goal: GoalReading, m: dict[str, float | None]) -> float | None:
    if goal.latency_ms is not None:
        return goal.latency_ms
    return m["slo"]


def choose_replicas(conv: Conversation, goal: GoalReading, service: str, m: dict[str, float | None]) -> int | Call | None:
    """The replica count to scale to, a simulation to run first, or None for no change."""
    current, p95, cpu = int(m["replicas"] or 0), m["p95"], m["cpu"]
    if current <= 0 or p95 is None:
        return None
    low, high = _bounds(conv, goal, m, service)
    target = latency_target(goal, m)
    sims = _simulations(conv, service)
    can_simulate = conv.offered("simulate_scaling") and len(sims) < MAX_SIMULATIONS

    def passes(r: int) -> bool | None:
        p = sims.get(r, {}).get("p95")
        return None if p is None else p <= (target or math.inf) and not sims[r]["problems"]

    if goal.wants_cost_cut and (target is None or p95 <= target):
        bound = target or p95 * 1.25
        target = bound
        if goal.cost_cut_pct is not None:
            start = math.floor(current * (1 - goal.cost_cut_pct / 100))
        elif cpu:
            start = math.ceil(current * cpu / TARGET_UTILISATION_PCT)
        else:
            start = current - 1
        for r in range(max(low, min(start, current - 1)), current):
            verdict = passes(r)
            if verdict is None:
                return conv.call("simulate_scaling", service=service, replicas=r) if can_simulate else r
            if verdict:
                return r
        return None
    if target is None:
        # "Slow", "errors", "overloaded" with no number: aim for a comfortable utilisation.
        if not cpu or cpu <= TARGET_UTILISATION_PCT:
            return None
        return min(high, math.ceil(current * cpu / TARGET_UTILISATION_PCT))
    if p95 <= target or high <= current:
        return None
    fail = max([current] + [r for r in sims if passes(r) is False])
    ok = min([r for r in sims if passes(r)] or [high + 1])
    if passes(high) is False:
        return high  # not even the most policy allows reaches the target: the best within policy, said as such
    if ok > high and fail > current and can_simulate:
        return conv.call("simulate_scaling", service=service, replicas=high)  # the estimate missed: is it reachable?
    if ok - fail <= 1 or not can_simulate:
        if ok <= high:
            return ok
        estimate = math.ceil(current * (cpu or 100.0) / TARGET_UTILISATION_PCT)
        return min(high, max(fail + 1, estimate))
    if ok <= high:
        candidate = (fail + ok) // 2
    else:
        fail_cpu = sims.get(fail, {}).get("cpu") or (cpu if fail == current else None) or 100.0
        candidate = min(high, max(fail + 1, math.ceil(fail * fail_cpu / TARGET_UTILISATION_PCT)))
    return conv.call("simulate_scaling", service=service, replicas=candidate)


def _read(conv: Conversation, service: str) -> dict[str, float | None] | None:
    raw = _raw(conv, service)
    return None if raw is None else metrics(raw)


def _raw(conv: Conversation, service: str) -> Any:
    obs = next((o for o in reversed(conv.calls("get_service_metrics")) if o.ok and o.args.get("service") == service), None)
    return None if obs is None else obs.result


def repair_needed(result: Any) -> str | None:
    """``restart_service`` for a transient fault (memory near full), ``rollback_service`` when the deployed
    release errs or is slower than the one before it; None when neither explains a degraded service."""
    m = metrics(result)
    degraded = (m["errors"] or 0) > ERROR_RATE_DEGRADED or (m["p95"] or 0) > P95_DEGRADED_MS
    if not degraded or not isinstance(result, dict):
        return None
    if (find_number(result, "memory_pct", contains="memory") or 0) >= MEMORY_FULL_PCT:
        return "restart_service"
    now_errors, before_errors = find_number(result, "release_error_rate"), find_number(result, "previous_release_error_rate")
    now_p95, before_p95 = find_number(result, "release_base_p95_ms"), find_number(result, "previous_release_base_p95_ms")
    if now_errors is not None and before_errors is not None and now_errors - before_errors > ERROR_RATE_DEGRADED / 2 \
            and now_errors > 2 * before_errors:
        return "rollback_service"
    if now_p95 is not None and before_p95 is not None and now_p95 > 1.5 * before_p95 + 50:
        return "rollback_service"
    return None


def _repair_call(conv: Conversation, service: str) -> Call | None:
    """A restart or a rollback when the metrics point at one (tried once per step), before any scaling."""
    tool = repair_needed(_raw(conv, service))
    if tool is None or not conv.offered(tool) or conv.calls(tool):
        return None
    return conv.call(tool, service=service)


def _repaired(conv: Conversation) -> Any:
    return next((o for t in REPAIR_TOOLS for o in conv.calls(t) if o.ok), None)


def ops_next(conv: Conversation, goal: GoalReading, role: str, verify: bool) -> Call | None:
    service = service_of(conv, goal)
    if not isinstance(service, str):
        return service
    m = _read(conv, service)
    if m is None:
        return conv.call("get_service_metrics", service=service) if conv.offered("get_service_metrics") else None
    if role == "innovator" and not verify:
        return _options(conv, service, m)
    if role != "optimizer" or verify:
        return None
    # One repair per step: a restart or rollback that worked is reported, and the verifier re-reads.
    if _repaired(conv) is not None:
        return None
    fix = _repair_call(conv, service)
    if fix is not None or not conv.offered("scale_service"):
        return fix
    attempts = conv.calls("scale_service")
    if any(o.ok for o in attempts):
        return None
    refused = [o for o in attempts if not o.ok]
    if len(refused) >= 2 or any(o.status in ("rejected", "invalid") for o in refused):
        return None
    if refused:
        asked = refused[-1].args.get("replicas")
        low, high = _bounds(conv, goal, m, service)
        current = int(m["replicas"] or 0)
        if not isinstance(asked, int):
            return None
        retry = min(max(asked, low), high)
        if retry in (asked, current) or (retry - current) * (asked - current) <= 0:
            return None
        return conv.call("scale_service", service=service, replicas=retry)
    choice = choose_replicas(conv, goal, service, m)
    if isinstance(choice, Call) or choice is None:
        return choice
    if choice == int(m["replicas"] or 0):
        return None
    return conv.call("scale_service", service=service, replicas=int(choice))


def _options(conv: Conversation, service: str, m: dict[str, float | None]) -> Call | None:
    current = int(m["replicas"] or 0)
    if not conv.offered("simulate_scaling") or current <= 0:
        return None
    for r in (current + max(1, current // 2), current * 2):
        call = conv.call("simulate_scaling", service=service, replicas=r)
        if not conv.made(call):
            return call
    return None


def _fmt(m: dict[str, float | None]) -> str:
    parts = []
    if m["p95"] is not None:
        parts.append(f"p95 {m['p95']:g} ms")
    if m["cpu"] is not None:
        parts.append(f"CPU {m['cpu']:g}%")
    if m["errors"] is not None:
        parts.append(f"error rate {m['errors'] * 100:.2g}%" if m["errors"] < 1 else f"errors {m['errors']:g}")
    if m["replicas"] is not None:
        parts.append(f"{m['replicas']:g} replicas")
    if m["cost"] is not None:
        parts.append(f"${m['cost']:g}/hour")
    return ", ".join(parts) or "no metrics read"


def ops_finding(conv: Conversation, goal: GoalReading, role: str, verify: bool) -> tuple[str, list[str], float]:
    """Summary, recommendations and confidence of a service step."""
    service = service_of(conv, goal)
    if not isinstance(service, str):
        listing = conv.last_ok("list_services")
        known = ", ".join(names_in(listing.result)) if listing else "unknown"
        return (f"No service in the goal matches a known service (known: {known}); nothing was changed.",
                ["Name the service to act on."], 0.3)
    m = _read(conv, service)
    if m is None:
        return f"Could not read the metrics of {service}; nothing was changed.", ["Check that the service exists."], 0.3
    target = latency_target(goal, m)
    state = _fmt(m)
    verdict = ""
    if target is not None and m["p95"] is not None:
        verdict = " Target met." if m["p95"] <= target else f" Target missed: p95 still above {target:g} ms."
    sims = _simulations(conv, service)
    options = [f"{r} replicas: simulated p95 {s['p95']:g} ms" + (f" (policy: {s['problems']})" if s["problems"] else "")
               for r, s in sorted(sims.items()) if s["p95"] is not None]
    if verify:
        return f"Verification of {service}: {state} (target: {goal.target_text() or 'none stated'}).{verdict}", [], 0.8
    if role == "innovator":
        recs = options[:4] + ["Consider caching hot reads, autoscaling on CPU, or profiling the slowest endpoint "
                              "before adding capacity."]
        return f"Alternatives for {service} (now {state}): " + ("; ".join(options) or "no simulations run") + ".", recs, 0.6
    if role == "optimizer":
        repaired = _repaired(conv)
        if repaired is not None:
            after = metrics(repaired.result, "after")
            what = (f"Restarted {service}" if repaired.name == "restart_service" else
                    f"Rolled back {service} to {repaired.result.get('deployed_version', 'the previous release')}")
            return (f"{what}; before: {state}; after: {_fmt(after)}.", ["Verify the metrics after the change."], 0.75)
        tried = [o for t in REPAIR_TOOLS for o in conv.calls(t)]
        done = next((o for o in conv.calls("scale_service") if o.ok), None)
        refused = [o for o in conv.calls("scale_service") if not o.ok]
        if done is not None:
            after = metrics(done.result, "after")
            summary = (f"Scaled {service} from {m['replicas']:g} to {done.args.get('replicas')} replicas; "
                       f"before: {state}; expected after: {_fmt(after)}.")
            if target is not None and after["p95"] is not None:
                summary += " Target met." if after["p95"] <= target else f" Target missed: above {target:g} ms."
            note = [f"refused first: {o.error}" for o in refused]
            return summary, note + ["Verify the metrics after the change."], 0.75
        if refused:
            reasons = "; ".join(o.error or o.status for o in refused)
            return (f"Did not scale {service} ({state}): the change was {refused[-1].status}: {reasons}.",
                    ["Raise the limit or choose another option with an operator."], 0.5)
        if tried:
            reasons = "; ".join(f"{o.name} was {o.status}: {o.error}" for o in tried)
            return f"Did not repair {service} ({state}): {reasons}.", ["Ask an operator to take over."], 0.5
        return (f"No change to {service} was needed or possible within the limits: {state}.{verdict}",
                options[:3], 0.6)
    recs = [f"Scale {service} to meet {target:g} ms."] if verdict.startswith(" Target missed") else []
    return f"{service}: {state}.{verdict}", recs, 0.8


# -- a part of a request about one service ---------------------------------------------------------------------

# Below this CPU a service has spare capacity: more replicas cannot make it faster.
IDLE_CPU_PCT = 50.0
_SYMPTOM = re.compile(r"\b(?:slow\w*|sluggish|lag\w*|latency|p\d\d|crawl\w*|errors?|erroring|failing|timeouts?|"
                      r"timing out|hang\w*|overloaded|swamped|struggl\w*)\b", re.I)


def reading_of(intent: Any) -> GoalReading:
    """The old goal reading of one intent, for the replica search (``choose_replicas``)."""
    b = intent.bounds
    return GoalReading(text=intent.own_text, domain="ops", act=intent.act, latency_ms=b.latency_ms,
                       cost_cut_pct=b.cost_cut_pct, cost_factor=b.cost_factor, max_replicas=b.max_replicas,
                       wants_cost_cut=intent.action == "scale_down" or b.cost_usd_hour is not None
                       or b.cost_cut_pct is not None, notify=intent.notify)


def release_worse(raw: Any) -> bool:
    """The deployed release errs more, or is slower, than the release before it."""
    now_e, before_e = find_number(raw, "release_error_rate"), find_number(raw, "previous_release_error_rate")
    now_p, before_p = find_number(raw, "release_base_p95_ms"), find_number(raw, "previous_release_base_p95_ms")
    if now_e is not None and before_e is not None and now_e - before_e > ERROR_RATE_DEGRADED / 2 and now_e > 2 * before_e:
        return True
    return now_p is not None and before_p is not None and now_p > 1.5 * before_p + 50


def release_text(raw: Any) -> str:
    """The deployed and previous releases' own error rates and latencies, in words."""
    if not isinstance(raw, dict) or not raw.get("deployed_version"):
        return ""
    now, before = raw.get("deployed_version"), raw.get("previous_version")
    now_e, before_e = find_number(raw, "release_error_rate"), find_number(raw, "previous_release_error_rate")
    now_p, before_p = find_number(raw, "release_base_p95_ms"), find_number(raw, "previous_release_base_p95_ms")
    text = f"release {now}"
    if now_e is not None:
        text += f" errs {now_e * 100:.2g}%" + (f" against {before_e * 100:.2g}% for {before}" if before_e is not None
                                               and before else "")
    if now_p is not None and before_p is not None:
        text += f", base p95 {now_p:g} ms against {before_p:g} ms"
    return text


def _needed_for_load(m: dict[str, float | None], raw: Any) -> int | None:
    """Replicas that bring utilisation to the target, from the request rate and per-replica capacity."""
    rate, capacity = find_number(raw, "requests_per_s"), find_number(raw, "capacity_per_replica_rps")
    if rate and capacity:
        return math.ceil(rate / (capacity * TARGET_UTILISATION_PCT / 100))
    current, cpu = m["replicas"], m["cpu"]
    return math.ceil(current * cpu / TARGET_UTILISATION_PCT) if current and cpu else None


def _clamp(conv: Conversation, reading: GoalReading, m: dict[str, float | None], service: str, wanted: int) -> int:
    low, high = _bounds(conv, reading, m, service)
    return max(low, min(high, wanted))


def service_plan(conv: Conversation, intent: Any, service: str, raw: Any) -> tuple[Call | None, str]:
    """What to do about one service for one intent: the call to make next (a change, or a simulation first), or
    None with the reason no change is made. The metrics decide, not the words: a release that errs is rolled back
    even when scaling was asked, memory near full is restarted, load is scaled, an idle service is left alone."""
    m = metrics(raw)
    reading = reading_of(intent)
    asked = set(intent.actions)
    current = int(m["replicas"] or 0)
    cpu, p95, errors = m["cpu"] or 0.0, m["p95"] or 0.0, m["errors"] or 0.0
    memory = find_number(raw, "memory_pct", contains="memory") or 0.0
    degraded = errors > ERROR_RATE_DEGRADED or p95 > P95_DEGRADED_MS
    status = str(raw.get("status", "")) if isinstance(raw, dict) else ""
    loaded = cpu >= 80 or status in ("overloaded", "saturated")
    release = release_text(raw)
    if memory >= MEMORY_FULL_PCT and (degraded or "restart" in asked):
        why = f"memory is at {memory:g}%: a leak, which a restart clears"
        if "rollback" in asked and not release_worse(raw):
            why += f"; a rollback would not help ({release}, no worse than before)"
        return conv.call("restart_service", service=service), why
    if release_worse(raw) and (degraded or "rollback" in asked):
        why = f"its {release}: the release is the cause, so it is rolled back"
        if asked & {"scale_up", "target"} and not loaded:
            why += f"; more replicas would not remove a release's own errors (CPU is {cpu:g}%)"
        return conv.call("rollback_service", service=service), why
    if "restart" in asked and not degraded:
        return None, f"{service} shows no fault a restart would clear (memory {memory:g}%, error rate {errors:.1%})"
    # A budget the service is within is a ceiling on replicas, not a request to cut.
    budget, per = intent.bounds.cost_usd_hour, (m["cost"] / current if m["cost"] and current else None)
    over_budget = budget is not None and (m["cost"] or 0) > budget
    cost_asked = intent.action == "scale_down" or intent.bounds.cost_cut_pct is not None or over_budget
    reading.wants_cost_cut = cost_asked
    if budget is not None and per and not over_budget:
        affordable = math.floor(budget / per + 1e-9)
        reading.max_replicas = min(reading.max_replicas or affordable, affordable)
    if "rollback" in asked and not loaded:
        return None, (f"the {release or 'deployed release'} is no worse than the one before, and {service} is not "
                      f"overloaded (CPU {cpu:g}%): a rollback would change nothing")
    if cost_asked and not loaded:
        return _trim(conv, intent, reading, m, service)
    if cost_asked:
        return None, f"{service} is busy (CPU {cpu:g}%, p95 {p95:g} ms): removing replicas would overload it"
    explicit = intent.bounds.set_replicas if intent.bounds.set_replicas is not None else (
        current + intent.bounds.add_replicas if intent.bounds.add_replicas is not None else (
            round(current * intent.bounds.scale_factor) if intent.bounds.scale_factor and current else None))
    base = find_number(raw, "release_base_p95_ms") or p95
    idle = cpu < IDLE_CPU_PCT and p95 <= 1.3 * base + 5 and errors <= ERROR_RATE_DEGRADED
    if explicit is not None:
        if idle and _SYMPTOM.search(intent.text):
            return None, (f"{service} is idle at {cpu:g}% CPU ({status or 'spare capacity'}) and its p95 of {p95:g} ms "
                          f"is its own base latency: more replicas would not lower it, so none were added")
        wanted = _clamp(conv, reading, m, service, explicit)
        if wanted == current:
            return None, f"{service} already runs {current} replicas, the most policy allows for this change"
        why = f"{explicit} replicas were asked" + (f"; policy allows {wanted}" if wanted != explicit else "")
        return conv.call("scale_service", service=service, replicas=wanted), why
    if reading.latency_ms is not None:
        choice = choose_replicas(conv, reading, service, m)
        if isinstance(choice, Call):
            return choice, "simulating"
        if choice is None or choice == current:
            met = p95 <= reading.latency_ms
            best = _simulations(conv, service).get(_bounds(conv, reading, m, service)[1], {}).get("p95")
            return None, (f"p95 is {p95:g} ms, already within {reading.latency_ms:g} ms" if met else
                          f"no replica count within policy brings p95 from {p95:g} ms under {reading.latency_ms:g} ms"
                          + (f" (at the most policy allows, {_bounds(conv, reading, m, service)[1]} replicas, it "
                             f"would be {best:g} ms): a person has to decide" if best is not None else ""))
        short = _simulations(conv, service).get(int(choice), {}).get("p95")
        return conv.call("scale_service", service=service, replicas=int(choice)), (
            f"p95 {p95:g} ms against a target of {reading.latency_ms:g} ms"
            + (f"; {int(choice)} replicas is the most policy allows, and even so p95 would be {short:g} ms, "
               f"above the target" if short is not None and short > reading.latency_ms else ""))
    if loaded or cpu > TARGET_UTILISATION_PCT:
        wanted = _clamp(conv, reading, m, service, max(current + 1, _needed_for_load(m, raw) or current + 1))
        if wanted <= current:
            return None, f"{service} is overloaded (CPU {cpu:g}%) but policy allows no more replicas"
        return conv.call("scale_service", service=service, replicas=wanted), (
            f"CPU is at {cpu:g}% ({status or 'busy'}): the load needs capacity"
            + ("; the release is not the cause: " + release if "rollback" in asked and release else ""))
    if degraded:
        return None, f"{service} errs ({errors:.1%}) but neither its load, its memory nor its release explains it"
    return None, f"{service} is {status or 'healthy'} (p95 {p95:g} ms, CPU {cpu:g}%): nothing to fix"


def _trim(conv: Conversation, intent: Any, reading: GoalReading, m: dict[str, float | None],
          service: str) -> tuple[Call | None, str]:
    current = int(m["replicas"] or 0)
    budget = intent.bounds.cost_usd_hour
    per = m["cost"] / current if m["cost"] and current else None
    if budget is not None and per:
        if (m["cost"] or 0) <= budget:
            return None, f"{service} already costs ${m['cost']:g}/hour, within ${budget:g}/hour"
        low, _ = _bounds(conv, reading, m, service)
        bound = reading.latency_ms
        sims = _simulations(conv, service)
        for r in range(min(current - 1, math.floor(budget / per + 1e-9)), low - 1, -1):
            if bound is None:
                return conv.call("scale_service", service=service, replicas=r), f"${budget:g}/hour buys {r} replicas"
            p = sims.get(r, {}).get("p95")
            if p is None and conv.offered("simulate_scaling"):
                return conv.call("simulate_scaling", service=service, replicas=r), "simulating"
            if p is not None and p <= bound:
                return conv.call("scale_service", service=service, replicas=r), (
                    f"${budget:g}/hour buys {r} replicas, whose p95 ({p:g} ms) stays within {bound:g} ms")
            if p is not None:
                return None, f"within ${budget:g}/hour p95 would be {p:g} ms, above {bound:g} ms"
        return None, f"policy allows no replica count under ${budget:g}/hour"
    choice = choose_replicas(conv, reading, service, m)
    if isinstance(choice, Call):
        return choice, "simulating"
    if choice is None or choice >= current:
        return None, f"{service} has no spare replicas to remove without hurting its p95 ({m['p95']:g} ms)"
    return conv.call("scale_service", service=service, replicas=int(choice)), (
        f"it runs at {m['cpu']:g}% CPU on {current} replicas: over-provisioned")


def service_met(intent: Any, raw: Any) -> tuple[bool, str]:
    """Whether a fresh read shows the intent's target met for this service, and the facts that say so."""
    m = metrics(raw)
    status = str(raw.get("status", "")) if isinstance(raw, dict) else ""
    bounds = intent.bounds
    if bounds.latency_ms is not None and (m["p95"] or 0) > bounds.latency_ms:
        return False, f"p95 {m['p95']:g} ms is above {bounds.latency_ms:g} ms"
    if bounds.cost_usd_hour is not None and (m["cost"] or 0) > bounds.cost_usd_hour:
        return False, f"it costs ${m['cost']:g}/hour, above ${bounds.cost_usd_hour:g}/hour"
    if status in ("overloaded", "saturated", "erroring"):
        return False, f"it is still {status}"
    return True, f"it is {status or 'healthy'}"
