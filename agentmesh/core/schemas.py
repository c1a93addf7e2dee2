"""The structured outputs agents return: a plan, findings, a review, the decision.

Each is validated with pydantic; the model is untrusted, so bounds (lengths, counts, ranges) are part of
the schema and a reply that breaks them is re-asked with the validation error. Agents return them by
calling an *output tool* named after the schema (``submit_plan``, ``submit_finding``, ``submit_review``,
``submit_decision``), which every OpenAI-compatible endpoint supports.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Decision", "Finding", "OUTPUT_TOOLS", "Plan", "PlanStep", "Review", "WORKER_ROLES"]

# Roles a plan step may be assigned to: the strategist plans and decides itself.
WORKER_ROLES = ("analyst", "optimizer", "innovator")


class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class PlanStep(_Output):
    """One step of a plan, for one agent."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$", description="Short unique id, e.g. s1.")
    role: str = Field(description="The agent that does the step: analyst, optimizer or innovator.")
    instruction: str = Field(min_length=3, max_length=2000, description="What the agent should do, concretely.")
    depends_on: list[str] = Field(default_factory=list, max_length=10, description="Ids of steps that must finish first.")


class Plan(_Output):
    """The strategist's plan: steps assigned to roles, with dependencies; steps without them run in parallel."""

    objective: str = Field(min_length=3, max_length=1000, description="The goal restated as a measurable objective.")
    steps: list[PlanStep] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be unique")
        seen: set[str] = set()
        for step in self.steps:
            unknown = [d for d in step.depends_on if d not in ids]
            if unknown:
                raise ValueError(f"step {step.id} depends on unknown steps {unknown}")
            if any(d not in seen for d in step.depends_on):
                raise ValueError(f"step {step.id} depends on a later step; list steps in order")
            seen.add(step.id)
        return self


class Finding(_Output):
    """What one agent found or did in its step."""

    summary: str = Field(min_length=1, max_length=2000, description="What was found or done, with the numbers.")
    observations: list[str] = Field(default_factory=list, max_length=20, description="Facts read from tools.")
    recommendations: list[str] = Field(default_factory=list, max_length=10, description="What should happen next.")
    confidence: float = Field(ge=0, le=1, description="0 to 1.")


class Review(_Output):
    """The strategist's review of a round's findings: decide now, or plan more steps (bounded rounds)."""

    verdict: Literal["decide", "replan"]
    reason: str = Field(min_length=1, max_length=1000)
    new_steps: list[PlanStep] = Field(default_factory=list, max_length=6, description="Steps to add when replanning.")


class Decision(_Output):
    """The final decision of a goal. The actions actually taken come from the audit, not from this text."""

    summary: str = Field(min_length=1, max_length=2000, description="The decision in two or three sentences.")
    rationale: str = Field(min_length=1, max_length=4000, description="Why, citing the findings and numbers.")
    confidence: float = Field(ge=0, le=1)
    open_risks: list[str] = Field(default_factory=list, max_length=10)
    outcome: Literal["achieved", "partially_achieved", "not_achieved", "no_action_needed", "escalated"] = Field(
        description="How the goal stands after the actions taken."
    )

    @field_validator("open_risks")
    @classmethod
    def _short(cls, risks: list[str]) -> list[str]:
        return [r[:500] for r in risks]


# Output tool name → schema.
OUTPUT_TOOLS: dict[str, type[BaseModel]] = {
    "submit_plan": Plan,
    "submit_finding": Finding,
    "submit_review": Review,
    "submit_decision": Decision,
}
