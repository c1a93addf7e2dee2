"""The one exception tree of agentmesh.

    AgentmeshError
    ├── UserError                 misuse, bad configuration or input: a clear one-line message, exit 2
    │   ├── ConfigError           settings or policy files that cannot be used
    │   ├── NotFoundError         an unknown run, graph, tool, role, service, dataset or ticket
    │   └── RunOwned              resuming a run another live process owns (``--force`` takes it over)
    ├── RunError                  something went wrong while a goal ran: exit 1
    │   ├── ModelError            the model endpoint failed after transport retries, or its output never validated
    │   ├── ToolError             a tool raised, timed out or returned something unusable
    │   ├── PolicyViolation       a call that policy, permissions or limits refuse
    │   ├── BudgetExceeded        a per-goal limit (model calls, tokens, cost, wall time) ran out
    │   └── RunFenced             this process no longer owns the run (another took it over): nothing written
    └── (control flow is LangGraph's own: ``GraphInterrupt`` pauses a run for approval)
"""

from __future__ import annotations

__all__ = [
    "AgentmeshError",
    "BudgetExceeded",
    "ConfigError",
    "ModelError",
    "NotFoundError",
    "PolicyViolation",
    "RunError",
    "RunFenced",
    "RunOwned",
    "ToolError",
    "UserError",
]


class AgentmeshError(Exception):
    """Base of every error agentmesh raises on purpose."""


class UserError(AgentmeshError):
    """The user asked for something that cannot be done as asked; the message says what to do."""


class ConfigError(UserError):
    """A setting, policy file or prompt file is invalid."""


class NotFoundError(UserError):
    """A named thing (run, graph, tool, role, service, dataset, ticket) does not exist."""


class RunOwned(UserError):
    """The run is owned by a live process (its lease has not expired): it is not resumed unless forced."""


class RunError(AgentmeshError):
    """A goal's run failed."""


class ModelError(RunError):
    """The model endpoint failed after the transport retries, or its output never validated."""


class ToolError(RunError):
    """A tool raised, timed out or returned something unusable."""


class PolicyViolation(RunError):
    """A tool call refused by role permissions, policy limits or approval rules."""


class BudgetExceeded(RunError):
    """A per-goal budget ran out; partial results are kept."""

    def __init__(self, message: str, *, budget: str) -> None:
        super().__init__(message)
        self.budget = budget


class RunFenced(RunError):
    """This process no longer owns the run: another resumed it with ``--force``; the write was rejected."""
