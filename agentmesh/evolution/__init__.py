"""Self-evolving agents: versioned prompts (with the role's settings in their front matter) in the database, an
evolution graph that proposes candidate changes from eval failures and promotes one only on evidence, and
promotion (optionally approved through `agentmesh approve`) / rollback with an audit trail.

Modules: ``statistics`` (the train / held-out split and the paired sign test), ``proposals`` (rule-based and
model proposals), ``graph`` (the evolution StateGraph), ``flow`` (the ``agentmesh-evolve`` Prefect flow and its
deployment), ``report`` (HTML, Prefect artifacts, the rounds table). The prompt store itself (history, active
version, promote, rollback) is ``agentmesh.prompts.versions``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvolutionOptions", "aevolve", "evolve"]


def __getattr__(name: str) -> Any:
    if name == "EvolutionOptions":
        from agentmesh.evolution.graph import EvolutionOptions

        return EvolutionOptions
    if name in ("aevolve", "evolve"):
        from agentmesh.evolution import flow

        return getattr(flow, name)
    raise AttributeError(name)
