"""The evidence a promotion needs: a deterministic train / held-out split of a suite, and an exact paired sign
test over scenarios.

    train, held_out = split_scenarios(scenarios, held_out=0.3)
    test = sign_test(baseline_scores, candidate_scores)      # per-scenario pass^k, paired by scenario id
    test.p_value                                              # one-sided: P(at least this many wins | no effect)

Why a sign test: the unit is a scenario, the score per scenario is its pass^k (all k trials succeed), so the
paired differences are few and mostly ties or ±1 — the sign test is exact for that, needs no distribution
and no scipy. Ties carry no information and are dropped. With n untied scenarios the smallest possible
p-value is 2^-n: a suite of four scenarios can never show p < 0.05, and the decision says so instead of
promoting on noise.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PairedComparison", "compare_paired", "is_held_out", "scenario_scores", "sign_test", "split_scenarios"]


def _bucket(scenario_id: str) -> float:
    return int(hashlib.sha256(scenario_id.encode()).hexdigest()[:8], 16) / 0x1_0000_0000


def is_held_out(scenario_id: str, fraction: float) -> bool:
    """Whether a scenario is in the held-out split: a hash of its id, so the answer never changes as the suite
    grows and never depends on file order."""
    return _bucket(scenario_id) < fraction


def split_scenarios(items: list[Any], *, held_out: float = 0.3, key: Any = lambda s: s.id) -> tuple[list[Any], list[Any]]:
    """(train, held-out) by the hash of each scenario id. A suite of two or more scenarios always gets at
    least one of each: if the hash puts all on one side, the scenario with the extreme hash moves over."""
    if not 0 <= held_out < 1:
        raise ValueError("held_out must be in [0, 1)")
    train = [s for s in items if not is_held_out(key(s), held_out)]
    held = [s for s in items if is_held_out(key(s), held_out)]
    if held_out > 0 and len(items) >= 2:
        if not held:
            lowest = min(train, key=lambda s: _bucket(key(s)))
            train.remove(lowest)
            held.append(lowest)
        elif not train:
            highest = max(held, key=lambda s: _bucket(key(s)))
            held.remove(highest)
            train.append(highest)
    return train, held


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign test: P(X >= wins) for X ~ Binomial(wins + losses, 1/2). 1.0 when nothing differs."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(wins, n + 1)) / 2**n


def scenario_scores(report: dict[str, Any], ids: list[str] | None = None) -> dict[str, float]:
    """Per-scenario pass^k of an eval report, k = the scenario's trial count (every trial succeeded)."""
    out = {}
    for s in report["scenarios"]:
        if ids is not None and s["id"] not in ids:
            continue
        k = str(s["trials"])
        out[s["id"]] = float(s["pass_hat_k"].get(k, 0.0)) if s["trials"] else 0.0
    return out


@dataclass(kw_only=True)
class PairedComparison:
    """A candidate against the current version on the same scenarios."""

    scenarios: int
    """Scenarios compared."""
    wins: int
    """Scenarios where the candidate's pass^k is higher."""
    losses: int
    """Scenarios where it is lower."""
    ties: int
    """Scenarios with equal pass^k (dropped by the test)."""
    baseline_mean: float
    """Mean pass^k of the current version."""
    candidate_mean: float
    """Mean pass^k of the candidate."""
    p_value: float
    """One-sided exact sign test p-value (see the module docstring)."""
    min_p_value: float
    """The smallest p-value this many scenarios could ever give (2^-n)."""
    deltas: dict[str, float] = field(default_factory=dict)
    """Candidate minus baseline pass^k, per scenario id."""

    @property
    def delta(self) -> float:
        return round(self.candidate_mean - self.baseline_mean, 4)

    def as_dict(self) -> dict[str, Any]:
        return {"test": "exact one-sided sign test over scenarios (pass^k)", "scenarios": self.scenarios,
                "wins": self.wins, "losses": self.losses, "ties": self.ties,
                "baseline_mean": round(self.baseline_mean, 4), "candidate_mean": round(self.candidate_mean, 4),
                "delta": self.delta, "p_value": round(self.p_value, 6), "min_p_value": round(self.min_p_value, 6),
                "deltas": self.deltas}


def compare_paired(baseline: dict[str, float], candidate: dict[str, float]) -> PairedComparison:
    ids = sorted(set(baseline) & set(candidate))
    deltas = {i: round(candidate[i] - baseline[i], 4) for i in ids}
    wins = sum(d > 1e-9 for d in deltas.values())
    losses = sum(d < -1e-9 for d in deltas.values())
    count = len(ids)
    return PairedComparison(
        scenarios=count, wins=wins, losses=losses, ties=count - wins - losses,
        baseline_mean=sum(baseline[i] for i in ids) / count if count else 0.0,
        candidate_mean=sum(candidate[i] for i in ids) / count if count else 0.0,
        p_value=sign_test(wins, losses), min_p_value=2.0**-count if count else 1.0, deltas=deltas,
    )
