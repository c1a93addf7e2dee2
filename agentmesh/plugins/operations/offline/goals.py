"""Reading a goal: its domain, whether it asks for a change, its targets and constraints, entity names."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from agentmesh.plugins.operations.offline.intents import parse_bounds

__all__ = ["GoalReading", "read_goal"]

_OPS = {
    "latency", "p95", "p99", "p50", "cpu", "replica", "replicas", "scale", "scaling", "slow", "slowness", "sluggish",
    "errors", "error", "cost", "costs", "spend", "spending", "bill", "service", "services", "throughput",
    "timeout", "timeouts", "outage", "load", "capacity", "overprovisioned", "instances", "autoscale",
    "performance", "slo", "sla", "ms", "milliseconds", "response", "saturated", "infrastructure", "pods",
}
_DATA = {
    "dataset", "datasets", "csv", "parquet", "clean", "cleaning", "cleanup", "duplicate", "duplicates",
    "duplicated", "null", "nulls", "missing", "quality", "pipeline", "rows", "column", "columns", "dedupe",
    "deduplicate", "schema", "records", "data", "profile", "outliers", "malformed", "blank", "invalid",
}
_SUPPORT = {
    "ticket", "tickets", "customer", "customers", "refund", "refunds", "complaint", "complaints",
    "complaining", "support", "backlog", "escalation", "escalations", "inbox", "queue", "helpdesk",
    "requests", "angry", "unhappy", "urgent", "triage", "reply", "respond",
}
_OPS_NAME = re.compile(r"\b[a-z0-9]+(?:-[a-z0-9]+)*-(?:api|svc|service|worker|gateway|web|db|server|backend)\b")
_ACT = re.compile(
    r"\b(fix|reduce|cut|lower|improve|scale|bring|keep|make|clean|cleanse|dedupe|de-?duplicate|remove|drop|"
    r"resolve|handle|process|refunds?|answer|close|clear|optimi[sz]e|speed|decrease|increase|add|shrink|"
    r"right-?size|save|trim|repair|address|sort (?:\w+ )?out|deal with|respond|reply|impute|normali[sz]e|restore|"
    r"escalate|"
    r"mitigate|get (?:it|them|this|p95|latency|cost)|work through|take care|tidy|purge|shed)\b"
)
_NO_ACT = re.compile(
    r"\b(?:do ?n[o']?t|don't|without|no) (?:change|changing|touch|touching|act|acting|modify|modifying|"
    r"scale|scaling)\b|\b(?:just|only) (?:report|look|check|tell|describe|investigate)\b|\bread-?only\b"
)
_REPORT = re.compile(
    r"^\s*(what|how|why|which|who|when|is|are|does|do|show|list|report|check|status|describe|summari[sz]e|"
    r"investigate|analy[sz]e|explain|tell me|give me|look at|review)\b"
)
_LATENCY = re.compile(
    r"(?:under|below|less than|<=?|≤|at most|within|to|no more than|max(?:imum)?|sub-?|<)\s*"
    r"(\d+(?:\.\d+)?)\s*(ms|msec|milliseconds?|s|secs?|seconds?)\b"
)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b)")
_MAX_REPLICAS = re.compile(r"(?:at most|no more than|max(?:imum)?(?: of)?|up to|cap(?:ped)? at)\s*(\d+)\s*replicas?")
_ENTITY = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)+\b")


@dataclass(kw_only=True)
class GoalReading:
    """What the rules take from a goal's words."""

    text: str
    """The goal, verbatim."""
    domain: str
    """``ops``, ``data``, ``support`` or ``unknown``."""
    act: bool
    """The goal asks for a change, not only a report."""
    latency_ms: float | None = None
    """A p95 target, e.g. 300 for "under 300 ms"."""
    cost_cut_pct: float | None = None
    """A cost reduction asked for, e.g. 30 for "cut cost by 30%"."""
    cost_factor: float | None = None
    """Replicas must stay below this multiple of the current count ("without doubling cost" → 2)."""
    max_replicas: int | None = None
    """An explicit replica ceiling ("at most 8 replicas")."""
    wants_cost_cut: bool = False
    """The goal is about spending less."""
    notify: bool = False
    """The goal asks to tell operations."""
    entities: tuple[str, ...] = ()
    """Name-like tokens (``checkout-api``, ``orders.csv``, ``T-1002``) in the goal."""

    def target_text(self) -> str:
        parts = []
        if self.latency_ms is not None:
            parts.append(f"p95 under {self.latency_ms:g} ms")
        if self.cost_cut_pct is not None:
            parts.append(f"cost down {self.cost_cut_pct:g}%")
        if self.cost_factor is not None:
            parts.append(f"replicas below {self.cost_factor:g}x the current count")
        if self.max_replicas is not None:
            parts.append(f"at most {self.max_replicas} replicas")
        return ", ".join(parts)

    def replica_ceiling(self, current: float | None) -> int | None:
        ceilings = []
        if self.max_replicas is not None:
            ceilings.append(self.max_replicas)
        if self.cost_factor is not None and current:
            ceilings.append(max(1, math.ceil(current * self.cost_factor) - (1 if self.cost_factor > 1 else 0)))
        return min(ceilings) if ceilings else None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text)


# A snake_case word is a column or dataset name ("customer_id", "sensor_readings"), and a noun followed by
# "dataset", "csv", "table"… names a dataset ("the customers dataset"): both speak of data, whatever the noun.
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_NAMED_DATA = re.compile(r"\b[a-z][a-z0-9_-]*\s+(?:dataset|data ?set|csv|table|export|file)\b")


def domain_scores(text: str) -> dict[str, int]:
    lowered = text.lower()
    snake = _SNAKE.findall(lowered)
    named = _NAMED_DATA.findall(lowered)
    words = _words(_NAMED_DATA.sub(" ", _SNAKE.sub(" ", lowered)))
    scores = {
        "ops": sum(w in _OPS for w in words) + 2 * len(_OPS_NAME.findall(lowered)),
        "data": sum(w in _DATA for w in words) + 2 * len(re.findall(r"\.(?:csv|parquet)\b", lowered))
        + len(snake) + 2 * len(named),
        "support": sum(w in _SUPPORT for w in words) + 2 * len(re.findall(r"\bt-\d+\b", lowered)),
    }
    if _LATENCY.search(lowered):  # a latency figure: an ops goal
        scores["ops"] += 2
    return scores


def read_goal(goal: str) -> GoalReading:
    lowered = goal.lower()
    scores = domain_scores(goal)
    best = max(scores.values())
    # Ties go to the first domain in this order; a goal with none of the words is unknown.
    domain = next((d for d in ("ops", "data", "support") if scores[d] == best), "unknown") if best else "unknown"
    reading = GoalReading(text=goal, domain=domain, act=False)
    reading.latency_ms = parse_bounds(goal).latency_ms  # the bound stated, not a reading ("jumped to 1.2 s")
    cost_words = re.search(r"\b(cost|costs|spend|spending|bill|budget|expensive|cheaper|money|\$)", lowered)
    reading.wants_cost_cut = bool(cost_words) and bool(
        re.search(r"\b(cut|reduce|lower|save|trim|decrease|cheaper|shrink|right-?size|overprovisioned|"
                  r"over-provisioned|too expensive)\b", lowered)
    ) and not re.search(r"without (?:doubling|increasing|raising|blowing)", lowered)
    percent = _PERCENT.search(lowered)
    if percent and reading.wants_cost_cut:
        reading.cost_cut_pct = min(95.0, float(percent.group(1)))
    if re.search(r"without (?:\w+ ){0,2}doubl", lowered) or "less than double" in lowered:
        reading.cost_factor = 2.0
    elif re.search(r"without (?:\w+ ){0,2}(?:increasing|raising|adding) (?:\w+ ){0,2}(?:cost|spend)|same cost|"
                   r"no (?:extra|additional) cost", lowered):
        reading.cost_factor = 1.0
    cap = _MAX_REPLICAS.search(lowered)
    if cap:
        reading.max_replicas = int(cap.group(1))
    reading.notify = bool(re.search(r"\b(notify|alert|page|inform|tell (?:ops|operations|on-?call))\b", lowered))
    has_target = reading.latency_ms is not None or reading.cost_cut_pct is not None
    reading.act = not _NO_ACT.search(lowered) and (
        bool(_ACT.search(lowered)) or (has_target and not _REPORT.search(lowered))
    )
    reading.entities = tuple(dict.fromkeys(m.group(0).rstrip(".") for m in _ENTITY.finditer(goal)))
    return reading
