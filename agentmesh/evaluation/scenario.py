"""Scenario files: one YAML document per scenario under ``evals/<suite>/``, validated by a pydantic schema.

    id: ops-checkout-slow
    purpose: A named service over its latency target is scaled within policy.
    tags: [ops, scaling]
    graph: mesh
    world:
      fixture: default              # a bundled sample world, or a folder with world.json
      setup:                        # applied directly to the world before the goal (see SetupAction)
        - set_service: {name: checkout-api, arrival_rate_rps: 120}
    goal: "checkout is crawling, p95 around a second. Get it below 300ms please."
    evaluation:
      reward_basis: [completed, state, required_calls]
      reference_actions:
        - {tool: scale_service, args: {service: checkout-api, replicas: 8}}
      state: {tolerance: {services.checkout-api.replicas: 2}}
      required_calls:
        - {tool: scale_service, args: {service: checkout-api, replicas: {range: [7, 12]}}}
    trials: 2

A bad file is a ``ScenarioError`` whose message starts with ``file:line:`` (from the YAML node marks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentmesh.core.exceptions import UserError

__all__ = [
    "COMPONENTS",
    "Budgets",
    "CallSpec",
    "Evaluation",
    "Scenario",
    "ScenarioError",
    "SetupAction",
    "load_scenario",
    "load_scenarios",
]

# Every component a trial is scored on, in report order. ``completed`` (the run ended without a crash) is
# always evaluated and always part of the reward.
COMPONENTS = ("completed", "state", "assertions", "required_calls", "forbidden_calls", "trajectory",
              "communicate", "outcome", "budgets", "rubric")
WRITE_TOOLS = ("scale_service", "clean_dataset", "resolve_ticket", "escalate_ticket", "notify_operations")


class ScenarioError(UserError):
    """A scenario file that cannot be read or does not match the schema; the message is ``file:line: reason``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolAction(_Strict):
    """A direct call of a world method named like the tool (``scale_service``, ``resolve_ticket``…)."""

    tool: Literal["scale_service", "restart_service", "rollback_service", "clean_dataset", "resolve_ticket",
                  "escalate_ticket", "notify_operations"]
    """The world write method to call."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Its arguments, as the tool takes them."""


class SetupAction(_Strict):
    """One change to the starting world, applied in order before the goal. Exactly one key is set.

    - ``set_service``: ``{name, replicas?, arrival_rate_rps?, service_rate_rps?, base_latency_ms?,
      base_error_rate?, cost_per_replica_hour?, deployed_version?, releases?, fault?}`` — overwrite a service's
      columns (load is ``arrival_rate_rps``; the queueing model derives CPU and p95 from it; ``releases`` are the
      earlier releases a rollback returns to, ``fault: memory_leak`` a fault a restart clears).
    - ``add_ticket``: ``{id, customer_id, subject, body, priority?, order_id?, requested_refund_usd?}``.
    - ``set_ticket``: ``{id, status?, priority?, body?, subject?, requested_refund_usd?}``.
    - ``only_open_tickets``: ``[ids]`` — every other open ticket is marked resolved, so a scenario can
      focus the backlog on the tickets it is about.
    - ``call``: ``{tool, args}`` — a world write method (e.g. an earlier refund on a ticket).
    """

    set_service: dict[str, Any] | None = None
    """Columns to overwrite on one service (``name`` picks it)."""
    add_ticket: dict[str, Any] | None = None
    """A new ticket."""
    set_ticket: dict[str, Any] | None = None
    """Columns to overwrite on one ticket (``id`` picks it)."""
    only_open_tickets: list[str] | None = None
    """The ticket ids left open; the other open tickets become resolved."""
    call: ToolAction | None = None
    """A world write method called directly."""

    @model_validator(mode="after")
    def _one(self) -> SetupAction:
        given = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a setup action sets exactly one of {', '.join(type(self).model_fields)}; got {given}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


class WorldSpec(_Strict):
    """The starting world of every trial: a fixture plus setup actions."""

    fixture: str = "default"
    """A bundled sample world name, or a folder holding ``world.json`` (relative to the scenario file)."""
    setup: list[SetupAction] = Field(default_factory=list)
    """Changes applied in order after the fixture is loaded."""


class CallSpec(_Strict):
    """A tool call to look for in a trial: the tool, optionally the agent, and argument matchers."""

    tool: str
    """The tool's name."""
    agent: str | None = None
    """Only calls made by this role."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Argument name → matcher (a plain value means equals; see agentmesh.evaluation.matchers)."""
    match: Literal["subset", "exact"] = "subset"
    """``subset``: the named arguments must match, others are free; ``exact``: no other arguments."""
    status: Literal["ok", "any"] | None = None
    """Which calls count: ``ok`` (executed) or ``any`` attempt; default ok for required, any for forbidden."""
    why: str = ""
    """Shown when the check fails."""

    @field_validator("args")
    @classmethod
    def _matchers(cls, args: dict[str, Any]) -> dict[str, Any]:
        from agentmesh.evaluation.matchers import check_matcher

        for name, spec in args.items():
            check_matcher(spec, f"args.{name}")
        return args


class StateSpec(_Strict):
    """Compare the final world with the reference world (reference actions replayed on a fresh copy)."""

    ignore: list[str] = Field(default_factory=list)
    """Paths left out of the comparison; ``*`` matches one segment (``tickets.*.priority``)."""
    tolerance: dict[str, float] = Field(default_factory=dict)
    """Path → allowed absolute difference for numbers (``services.checkout-api.replicas: 2``)."""
    only: list[str] = Field(default_factory=list)
    """When set, only paths under these prefixes are compared."""


class Assertion(_Strict):
    """A check on the final world: ``path`` (dotted, into the eval state view), operator, value."""

    path: str
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "matches"] = "=="
    value: Any = None
    why: str = ""


class Trajectory(_Strict):
    """The tool names the agents used, compared with an expected list."""

    mode: Literal["strict", "unordered", "subset", "superset"]
    """strict: same sequence; unordered: same multiset; subset: used only these; superset: used at least these."""
    calls: list[str]
    """Expected tool names."""


class Budgets(_Strict):
    """Most a trial may use; over any limit fails the ``budgets`` component."""

    tool_calls: int | None = Field(default=None, ge=0)
    model_calls: int | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)
    seconds: float | None = Field(default=None, gt=0)


class Evaluation(_Strict):
    """How a trial is scored; each configured check is a component, ``reward_basis`` picks the reward."""

    reward_basis: list[Literal["completed", "state", "assertions", "required_calls", "forbidden_calls", "trajectory",
                               "communicate", "outcome", "budgets", "rubric"]] | None = None
    """Components whose product is the reward; None means every configured one except trajectory and rubric."""
    reference_actions: list[ToolAction] = Field(default_factory=list)
    """Replayed on a fresh world to produce the expected final state (none: the world must not change)."""
    state: StateSpec | None = None
    """Compare the final world with the expected one; omitted means no state check."""
    assertions: list[Assertion] = Field(default_factory=list)
    required_calls: list[CallSpec] = Field(default_factory=list)
    forbidden_calls: list[CallSpec] = Field(default_factory=list)
    trajectory: Trajectory | None = None
    communicate: list[str | list[str]] = Field(default_factory=list)
    """Facts the decision must state; a list is alternatives (any one will do). Matched BFCL-normalised in the
    summary, rationale and open risks, outside any bare list of every name of one kind the world holds."""
    outcome: list[Literal["achieved", "partially_achieved", "not_achieved", "no_action_needed", "escalated"]] = \
        Field(default_factory=list)
    """Decision outcomes accepted."""
    rubric: str | None = None
    """A grading instruction for the LLM judge (only run when a judge model is configured)."""
    budgets: Budgets | None = None

    def configured(self) -> list[str]:
        """The components this evaluation defines (``completed`` always)."""
        present = {
            "completed": True, "state": self.state is not None, "assertions": bool(self.assertions),
            "required_calls": bool(self.required_calls), "forbidden_calls": bool(self.forbidden_calls),
            "trajectory": self.trajectory is not None, "communicate": bool(self.communicate),
            "outcome": bool(self.outcome), "budgets": self.budgets is not None, "rubric": bool(self.rubric),
        }
        return [c for c in COMPONENTS if present[c]]

    def basis(self) -> list[str]:
        if self.reward_basis is None:
            return [c for c in self.configured() if c not in ("trajectory", "rubric")]
        return list(dict.fromkeys(["completed", *self.reward_basis]))

    @model_validator(mode="after")
    def _basis_configured(self) -> Evaluation:
        missing = [c for c in self.reward_basis or [] if c not in self.configured()]
        if missing:
            raise ValueError(f"reward_basis names {missing}, which this evaluation does not configure")
        if len(self.basis()) < 2:
            raise ValueError("the evaluation checks nothing beyond completion: configure at least one check")
        return self


class Scenario(_Strict):
    """One eval scenario (see the module docstring for a file)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,80}$")
    purpose: str = Field(min_length=10, max_length=300)
    """One line: what the scenario shows."""
    tags: list[str] = Field(default_factory=list)
    graph: str = "mesh"
    world: WorldSpec = Field(default_factory=WorldSpec)
    goal: str | None = None
    turns: list[str] = Field(default_factory=list)
    """User turns, run in order on the same world; the last one's decision is scored."""
    evaluation: Evaluation
    trials: int | None = Field(default=None, ge=1, le=50)
    """Trials for this scenario; None uses the runner's ``--trials``."""
    # Set by the loader, not the file.
    suite: str = ""
    source: str = ""

    @field_validator("purpose")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("purpose is one line")
        return value.strip()

    @model_validator(mode="after")
    def _has_goal(self) -> Scenario:
        if bool(self.goal) == bool(self.turns):
            raise ValueError("give either `goal` or `turns` (a list of user turns)")
        return self

    @property
    def goals(self) -> list[str]:
        return [self.goal] if self.goal else list(self.turns)


# -- loading -------------------------------------------------------------------------------------------------


def _construct(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_document(node)


def _node_at(node: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node:
    """The deepest YAML node on a pydantic error location (to name its line)."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            if found is None:
                found = next((k for k, _ in node.value if k.value == part), None)
                if found is not None:
                    return found
                return node
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in error["loc"] if not str(p).startswith(("function-", "literal[", "str", "list[")))
    message = error["msg"].removeprefix("Value error, ")
    return f"{loc}: {message}" if loc else message


def load_scenario(path: Path, *, suite: str | None = None) -> Scenario:
    """Read and validate one scenario file; errors are ``ScenarioError('file:line: reason')``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}:1: cannot read the file ({exc.strerror})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ScenarioError(f"{path}:{line}: invalid YAML: {exc.problem}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ScenarioError(f"{path}:1: a scenario file is a mapping (id, purpose, goal, evaluation, ...)")
    data = _construct(root)
    data.setdefault("suite", suite or path.parent.name)
    data["source"] = str(path)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        node = _node_at(root, tuple(first["loc"]))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ScenarioError(f"{path}:{node.start_mark.line + 1}: {_describe(dict(first))}{more}") from None


def scenario_files(paths: list[str | Path]) -> list[tuple[Path, str]]:
    """(file, suite) for each path: a file, a folder of ``*.yaml``, or a bundled suite name like ``ops``."""
    from agentmesh.core.bundled import bundled

    found: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists() and not path.is_absolute() and len(path.parts) == 1:
            path = bundled("evals") / str(raw)
        if path.is_file():
            found.append((path, path.parent.name))
        elif path.is_dir():
            files = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
            found += [(f, f.parent.name if f.parent != path or not files else path.name) for f in files]
        else:
            raise ScenarioError(f"{raw}:1: no such scenario file, folder or bundled suite "
                                f"(bundled: {', '.join(sorted(p.name for p in bundled('evals').iterdir() if p.is_dir()))})")
    return found


def load_scenarios(paths: list[str | Path], *, tags: list[str] | None = None) -> list[Scenario]:
    """Every scenario under the paths, optionally only those with one of ``tags``; ids must be unique."""
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    for file, suite in scenario_files(paths):
        scenario = load_scenario(file, suite=suite)
        if scenario.id in seen:
            raise ScenarioError(f"{file}:1: scenario id {scenario.id!r} is also used by {seen[scenario.id]}")
        seen[scenario.id] = str(file)
        if tags and not set(tags) & {*scenario.tags, scenario.suite}:
            continue
        scenarios.append(scenario)
    return scenarios
