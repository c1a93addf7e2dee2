"""Candidate prompt changes, proposed from an eval report's failures.

Two proposers behind one signature, ``(request) -> list[Candidate]``:

- ``rule_proposals``: deterministic, for the offline model — each failure is matched against ``rules.yaml``
  (component + reason → an instruction for a role), and the most frequent instructions become candidates.
- ``model_proposals``: a real model reads the failures with ``evolver.md`` and answers a validated
  ``Proposals`` structured output.

Either way a candidate is the current prompt plus one change, so a diff shows exactly what changed and a
rollback removes exactly that: an instruction added under "Lessons from evaluation", or a change of one of the
role's settings in the front matter (``tools``, its tool subset; ``plan_rounds``; ``tool_rounds``; see
``agentmesh.prompts``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, model_validator

from agentmesh.prompts.templates import PromptTemplate

__all__ = ["Candidate", "Failure", "ProposalRequest", "Proposer", "add_instruction", "failures_of", "model_proposals",
           "pick_role", "rule_proposals", "with_settings"]

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
    """The instruction added, or for a settings change what changed (``tools: without notify_operations``)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The front-matter settings it sets (empty for an instruction)."""
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


SETTINGS = ("tools", "plan_rounds", "tool_rounds")


def with_settings(text: str, settings: dict[str, Any]) -> str:
    """The prompt text with front-matter settings replaced (or added), one line each; the body is untouched."""
    head, sep, body = text.partition("\n---")
    for key, value in settings.items():
        if key not in SETTINGS:
            raise ValueError(f"{key!r} is not a tunable setting ({', '.join(SETTINGS)})")
        line = f"{key}: {'auto' if value is None and key == 'tools' else json.dumps(value)}"
        if re.search(rf"(?m)^{key}:", head):
            head = re.sub(rf"(?m)^{key}:.*$", line, head, count=1)
        else:
            head = head.rstrip("\n") + "\n" + line
    return head + sep + body


def _settings_change(request: ProposalRequest, change: dict[str, Any], tool: str | None) -> dict[str, Any] | None:
    """The new settings a rule's change asks for, or None when it changes nothing."""
    from agentmesh.core.settings import get_settings

    current = PromptTemplate.from_text(request.current)
    for key, most in (("plan_rounds", 10), ("tool_rounds", 50)):  # the front matter's bounds
        if key in change:
            now = getattr(current, key) or getattr(request.settings or get_settings(), f"max_{key}")
            new = min(now + int(change[key]), most)
            return {key: new} if new != now else None
    offered = current.tools if current.tools is not None else _allowed_tools(request)
    if "drop_tool" in change and tool in offered:
        return {"tools": [t for t in offered if t != tool]}
    if "add_tool" in change and tool and tool not in offered and tool in _allowed_tools(request):
        return {"tools": [*offered, tool]}
    return None


def _allowed_tools(request: ProposalRequest) -> list[str]:
    """The tools the policy lets the role call (what ``tools: auto`` offers)."""
    from agentmesh.core.settings import get_settings
    from agentmesh.runtime.components import components

    parts = components(request.settings or get_settings())
    return [t.name for t in parts.registry if request.role in parts.policy.allowed_roles(t)]


@lru_cache(maxsize=1)
def _rules() -> list[dict[str, Any]]:
    return yaml.safe_load((_HERE / "rules.yaml").read_text(encoding="utf-8"))["rules"]


def _matches(failure: Failure) -> list[tuple[dict[str, Any], str | None]]:
    """The first matching instruction rule and the first matching settings rule, with the tool they name."""
    found: dict[str, tuple[dict[str, Any], str | None]] = {}
    for rule in _rules():
        kind = "settings" if "settings" in rule else "instruction"
        if kind in found or failure.component not in rule["component"]:
            continue
        hit = re.search(rule["match"], failure.reason)
        if hit:
            found[kind] = (rule, hit.groupdict().get("tool"))
    return list(found.values())


def _match(failure: Failure) -> tuple[dict[str, Any], str] | None:
    for rule, tool in _matches(failure):
        if "instruction" in rule:
            return rule, rule["instruction"].replace("{tool}", tool) if tool else rule["instruction"]
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
    """Deterministic proposals: the changes (instructions or settings) the failures match most often, for this
    role, one each."""
    scenarios: dict[str, set[str]] = {}
    reasons: dict[str, list[str]] = {}
    changes: dict[str, dict[str, Any]] = {}
    for f in request.failures:
        for rule, tool in _matches(f):
            if (_by_agent(f) or rule["role"]) != request.role and rule["role"] != request.role:
                continue
            if "instruction" in rule:
                change = rule["instruction"].replace("{tool}", tool) if tool else rule["instruction"]
                if change in request.current:
                    continue  # already said; saying it twice is not a change
            else:
                new = _settings_change(request, rule["settings"], tool)
                if new is None:
                    continue
                change = rule["describe"].replace("{tool}", tool or "") + f" ({_describe(new)})"
                changes[change] = new
            scenarios.setdefault(change, set()).add(f.scenario)
            reasons.setdefault(change, []).append(f"{f.component}: {f.reason[:120]}")
    ranked = sorted(scenarios, key=lambda i: (-len(scenarios[i]), i))[: request.count]
    return [
        Candidate(
            text=with_settings(request.current, changes[c]) if c in changes else add_instruction(request.current, c),
            instruction=c, settings=changes.get(c, {}),
            rationale=f"{len(scenarios[c])} failing scenario(s) share this cause — e.g. {reasons[c][0]}",
            addresses=sorted(scenarios[c]),
        )
        for c in ranked
    ]


def _describe(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {'auto' if v is None else json.dumps(v)}" for k, v in settings.items())


class SettingsChange(BaseModel):
    """New values of the role's tunable settings; omit what stays."""

    tools: list[str] | None = Field(default=None, max_length=40, description="The role's tool subset (tool names).")
    plan_rounds: int | None = Field(default=None, ge=1, le=10, description="Plan rounds (strategist only).")
    tool_rounds: int | None = Field(default=None, ge=1, le=50, description="Tool-calling turns per step.")


class Proposal(BaseModel):
    """One proposed change to an agent's prompt: an instruction to add, or new settings."""

    instruction: str = Field(default="", max_length=600, description="The instruction to add to the prompt (or empty).")
    settings: SettingsChange | None = Field(default=None, description="New settings instead of an instruction.")
    rationale: str = Field(min_length=5, max_length=600, description="The failures it addresses and why it helps.")

    @model_validator(mode="after")
    def _one_change(self) -> Proposal:
        if len(self.instruction.strip()) < 10 and not (self.settings and self.settings.model_dump(exclude_none=True)):
            raise ValueError("give an instruction of at least 10 characters or a settings change")
        return self


class Proposals(BaseModel):
    """Proposed prompt changes, best first."""

    proposals: list[Proposal] = Field(min_length=1, max_length=10)


def model_proposals(request: ProposalRequest) -> list[Candidate]:
    """A model's proposals: ``evolver.md`` rendered with the failures, answered as validated ``Proposals``.
    A settings change naming a tool the policy does not let the role call is dropped (the model is untrusted)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from agentmesh.models import make_chat_model

    template = PromptTemplate.from_text((_HERE / "evolver.md").read_text(encoding="utf-8"), path=_HERE / "evolver.md")
    current = PromptTemplate.from_text(request.current)
    allowed = _allowed_tools(request)
    system = template.render(target_role=request.role, count=request.count, current=request.current,
                             failures=request.failures[:40], settings=current.settings, allowed_tools=allowed)
    model = request.chat_model or make_chat_model(request.settings)
    answer = model.with_structured_output(Proposals).invoke(
        [SystemMessage(system), HumanMessage("Propose the changes now.")])
    proposals = answer if isinstance(answer, Proposals) else Proposals.model_validate(answer)
    failing = sorted({f.scenario for f in request.failures})
    out = []
    for p in proposals.proposals[: request.count]:
        change = p.settings.model_dump(exclude_none=True) if p.settings else {}
        if change:
            if not set(change.get("tools", [])) <= set(allowed):
                continue
            out.append(Candidate(text=with_settings(request.current, change), instruction=_describe(change),
                                 settings=change, rationale=p.rationale, addresses=failing))
        elif p.instruction not in request.current:
            out.append(Candidate(text=add_instruction(request.current, p.instruction), instruction=p.instruction,
                                 rationale=p.rationale, addresses=failing))
    return out
