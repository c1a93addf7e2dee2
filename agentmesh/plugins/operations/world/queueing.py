"""The load model behind every service: an M/M/c queue, deterministic, so scaling changes what is read next.

Each replica serves ``μ`` requests per second; requests arrive at ``λ``. With ``c`` replicas:

- utilisation ``ρ = λ / (c·μ)``; CPU% is ``ρ·100`` (capped at 100);
- a request waits with probability ``C`` (Erlang's C formula), and the wait beyond that is exponential with
  rate ``c·μ − λ``, so the 95th-percentile wait is ``ln(C / 0.05) / (c·μ − λ)`` when ``C > 0.05``, else 0;
- p95 latency = the service's own p95 (``base_latency_ms``) + that wait; at ``ρ ≥ 1`` the queue never
  drains and p95 is reported as ``SATURATED_P95_MS``;
- the error rate is the service's own (a bug) plus timeouts that rise linearly past ``ρ = 0.9``.

    >>> round(utilisation(76, 20, 4), 2)
    0.95
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Load", "erlang_c", "load", "utilisation"]

SATURATED_P95_MS = 30_000.0
"""The p95 reported when arrivals outpace service (the client timeout)."""
OVERLOAD_KNEE = 0.9
"""Utilisation past which requests start timing out."""


@dataclass(kw_only=True, frozen=True)
class Load:
    """What a service's metrics are at one replica count."""

    utilisation: float
    """ρ = λ / (c·μ)."""
    cpu_pct: float
    """ρ·100, capped at 100."""
    p95_ms: float
    """95th-percentile latency in milliseconds."""
    error_rate: float
    """Fraction of requests that fail, 0..1."""


def utilisation(arrival_rps: float, service_rps: float, replicas: int) -> float:
    return math.inf if replicas <= 0 else arrival_rps / (replicas * service_rps)


def erlang_c(replicas: int, offered: float) -> float:
    """Probability that a request waits, for ``replicas`` servers and offered load ``λ/μ`` (needs ρ < 1)."""
    # The iterative Erlang B recurrence stays stable for large replica counts.
    b = 1.0
    for k in range(1, replicas + 1):
        b = offered * b / (k + offered * b)
    rho = offered / replicas
    return b / (1 - rho + rho * b)


def load(
    *, arrival_rps: float, service_rps: float, replicas: int, base_latency_ms: float, base_error_rate: float
) -> Load:
    rho = utilisation(arrival_rps, service_rps, replicas)
    if rho >= 1:
        p95 = SATURATED_P95_MS
    else:
        waits = erlang_c(replicas, arrival_rps / service_rps)
        wait_s = math.log(waits / 0.05) / (replicas * service_rps - arrival_rps) if waits > 0.05 else 0.0
        p95 = base_latency_ms + wait_s * 1000
    overload = min(1.0, max(0.0, (rho - OVERLOAD_KNEE) * 0.4)) if math.isfinite(rho) else 1.0
    error_rate = min(1.0, base_error_rate + overload)
    return Load(
        utilisation=round(rho, 4) if math.isfinite(rho) else 999.0,
        cpu_pct=round(min(100.0, rho * 100), 1),
        p95_ms=round(p95, 1),
        error_rate=round(error_rate, 4),
    )
