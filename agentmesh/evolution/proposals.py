"""Candidate prompt changes, proposed from an eval report's failures.

Two proposers behind one signature, ``(request) -> list[Candidate]``:

- ``rule_proposals``: deterministic, for the offline model — each failure is matched against ``rules.yaml``
  (component + reason → an instruction for a role), and the most frequent instructions become candidates.
- ``model_proposals``: a real model reads the failures with ``evolver.md`` and answers a validated
  ``Proposals`` structured output.

Either way a candidate is the current prompt plus one added instruction under "Lessons from evaluation",
so a diff shows exactly what changed and a rollback removes exactly that.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from ..prompts import PromptTemplate

__all__ = ["Candidate", "Failure", "ProposalRequest", "Proposer", "add_instruction", "failures_of", "model_proposals",
           "pick_role", "rule_proposals"]

_HERE = Path(__file__).parent
LESSONS = "# Lessons from evaluation"


@dataclass(kw_only=True)
class Failure:
    """One failed component of one trial."""

    scenario: str
    """The scenario id."""
    component: str
    """The eval component that failed (required_calls, forbidden_calls, state, outcome…)."""
    reason: str
    """The scorer's reason."""


@dataclass(kw_only=True)
class Candidate:
    """A proposed prompt: the full text, what changed, and why."""

    text: str
    """The full prompt file text (front matter and body)."""
    instruction: str
    """The instruction added."""
    rationale: str
    """Why it should help, naming the failures it addresses."""
    addresses: list[str] = field(default_factory=list)
    """Scenario ids whose failures it addresses."""
    version: int | None = None
    """Its version number once recorded."""


@dataclass(kw_only=True)
class ProposalRequest:
    """What a proposer is given."""

    role: str
    """The role whose prompt changes."""
    current: str
    """The current prompt's full text."""
    failures: list[Failure]
    """Failures on the train split under the current prompt."""
    count: int
    """How many candidates to propose."""
    settings: Any = None
    """The evolution's settings (the model to ask)."""
    chat_model: Any = None
    """A chat model to ask instead of the configured one."""


Proposer = Callable[[ProposalRequest], list[Candidate]]


def failures_of(report: dict[str, Any], ids: set[str] | None = None) -> list[Failure]:
    """The failed components of a report's trials (optionally only of some scenarios)."""
    return [Failure(scenario=s["id"], component=f["component"], reason=f.get("reason") or "")
            for s in report["scenarios"] if ids is None or s["id"] in ids for f in s.get("failures", [])]


def add_instruction(text: str, instruction: str) -> str:
    """The prompt text with one instruction added under the lessons heading (created at the end if absent)."""
    line = f"- {instruction.strip()}\n"
    if LESSONS in text:
        head, _, tail = text.partition(LESSONS)
        return head + LESSONS + "\n\n" + line + tail.lstrip("\n")
    return text.rstrip("\n") + f"\n\n{LESSONS}\n\n{line}"


@lru_cache(maxsize=1)
def _rules() -> list[dict[str, Any]]:
    return yaml.safe_load((_HERE / "rules.yaml").read_text(encoding="utf-8"))["rules"]


def _match(failure: Failure) -> tuple[dict[str, Any], str] | None:
    for rule in _rules():
        if failure.component not in rule["component"]:
            continue
        found = re.search(rule["match"], failure.reason)
        if found:
            tool = found.groupdict().get("tool")
            instruction = rule["instruction"].replace("{tool}", tool) if tool else rule["instruction"]
            return rule, instruction
    return None


def _by_agent(failure: Failure) -> str | None:
    found = re.search(r" by (strategist|analyst|optimizer|innovator)\b", failure.reason)
    return found.group(1) if found else None


def pick_role(failures: list[Failure]) -> str | None:
    """The role most failures point at (for `agentmesh evolve` without --agent)."""
    votes: Counter[str] = Counter()
    for f in failures:
        matched = _match(f)
        role = _by_agent(f) or (matched[0]["role"] if matched else None)
        if role:
            votes[role] += 1
    return votes.most_common(1)[0][0] if votes else None


def rule_proposals(request: ProposalRequest) -> list[Candidate]:
    """Deterministic proposals: the instructions the failures match most often, for this role, one each."""
    scenarios: dict[str, set[str]] = {}
    reasons: dict[str, list[str]] = {}
    for f in request.failures:
        matched = _match(f)
        if matched is None:
            continue
        rule, instruction = matched
        if (_by_agent(f) or rule["role"]) != request.role and rule["role"] != request.role:
            continue
        if instruction in request.current:
            continue  # already said; saying it twice is not a change
        scenarios.setdefault(instruction, set()).add(f.scenario)
        reasons.setdefault(instruction, []).append(f"{f.component}: {f.reason[:120]}")
    ranked = sorted(scenarios, key=lambda i: (-len(scenarios[i]), i))[: request.count]
    return [
        Candidate(
            text=add_instruction(request.current, instruction), instruction=instruction,
            rationale=f"{len(scenarios[instruction])} failing scenario(s) share this cause — e.g. "
                      f"{reasons[instruction][0]}",
            addresses=sorted(scenarios[instruction]),
        )
        for instruction in ranked
    ]


class Proposal(BaseModel):
    """One proposed change to an agent's prompt."""

    instruction: str = Field(min_length=10, max_length=600, description="The instruction to add to the prompt.")
    rationale: str = Field(min_length=5, max_length=600, description="The failures it addresses and why it helps.")


class Proposals(BaseModel):
    """Proposed prompt changes, best first."""

    proposals: list[Proposal] = Field(min_length=1, max_length=10)


def model_proposals(request: ProposalRequest) -> list[Candidate]:
    """A model's proposals: ``evolver.md`` rendered with the failures, answered as validated ``Proposals``."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from ..models import make_chat_model

    template = PromptTemplate.from_text((_HERE / "evolver.md").read_text(encoding="utf-8"), path=_HERE / "evolver.md")
    system = template.render(target_role=request.role, count=request.count, current=request.current,
                             failures=request.failures[:40])
    model = request.chat_model or make_chat_model(request.settings)
    answer = model.with_structured_output(Proposals).invoke(
        [SystemMessage(system), HumanMessage("Propose the changes now.")])
    proposals = answer if isinstance(answer, Proposals) else Proposals.model_validate(answer)
    failing = sorted({f.scenario for f in request.failures})
    return [Candidate(text=add_instruction(request.current, p.instruction), instruction=p.instruction,
                      rationale=p.rationale, addresses=failing)
            for p in proposals.proposals[: request.count] if p.instruction not in request.current]
