"""What a running goal carries: the run's components and budgets, and the step being executed.

A run context is built by one factory (``agentmesh.runtime.components.build_run_context``) and passed down;
a graph node — an agentmesh ``Agent`` or a user's own function — is called by LangGraph, which agentmesh does
not own, so the node reaches its run and its step through two context variables, set in one place each
(``running`` and ``stepping``) and read through ``current_run`` and ``current_step``. They follow the node
into its Prefect task (async tasks run on the same loop; sync nodes get a copied context in their thread).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentmesh.core.exceptions import BudgetExceeded, UserError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from pydantic import BaseModel
    from sqlalchemy import Engine

    from agentmesh.core.resources import Resources
    from agentmesh.core.settings import Settings
    from agentmesh.gateway import Gateway
    from agentmesh.gateway.policy import Policy
    from agentmesh.models.offline import OfflineRules
    from agentmesh.tools import ToolRegistry

__all__ = ["Budget", "RunContext", "StepDelegate", "StepScope", "active_run", "current_run", "current_step", "running", "stepping"]


@dataclass(kw_only=True)
class Budget:
    """Per-goal limits and what has been spent; replayed (journalled) model calls are not counted twice."""

    max_model_calls: int
    max_tokens: int
    max_cost_usd: float
    max_seconds: float
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self) -> None:
        """Raise BudgetExceeded if the next model call would break a limit; otherwise count that call.

        Checking and counting are one step under the lock: parallel workers that checked before either had
        counted would otherwise both pass, and a goal would make more model calls than its budget.
        """
        with self._lock:
            self._check()
            self.model_calls += 1

    def _check(self) -> None:
        if self.model_calls >= self.max_model_calls:
            raise BudgetExceeded(f"model-call budget of {self.max_model_calls} used up", budget="model_calls")
        if self.input_tokens + self.output_tokens >= self.max_tokens:
            raise BudgetExceeded(f"token budget of {self.max_tokens} used up", budget="tokens")
        if self.max_cost_usd and self.cost_usd >= self.max_cost_usd:
            raise BudgetExceeded(f"cost budget of ${self.max_cost_usd:.2f} used up", budget="cost_usd")
        if time.monotonic() - self.started >= self.max_seconds:
            raise BudgetExceeded(f"wall-time budget of {self.max_seconds:.0f} s used up", budget="seconds")

    def add(self, input_tokens: int, output_tokens: int, cost: float | None) -> None:
        with self._lock:
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens
            self.cost_usd += cost or 0.0


StepDelegate = Callable[..., Awaitable["BaseModel"]]
"""Runs one agent step elsewhere (``agentmesh.runtime.remote``): ``delegate(agent, goal=, variables=, sections=)``."""


@dataclass(kw_only=True)
class RunContext:
    """The components of one goal's run (see ``agentmesh.runtime.components.build_run_context``)."""

    run_id: str
    """The goal's run id: the first flow run's id, and the LangGraph thread id."""
    goal: str
    """The goal as submitted."""
    graph: str
    """The graph's name."""
    settings: Settings
    """The effective settings of this run."""
    engine: Engine
    """The agentmesh database."""
    registry: ToolRegistry
    """The tools the installation offers."""
    policy: Policy
    """The policy in force."""
    resources: Resources
    """Typed dependencies the plug-ins provide (e.g. the sample operations world), built on first use."""
    gateway: Gateway
    """Every tool call of this run passes here."""
    budget: Budget
    """Model calls, tokens, cost and wall time left."""
    approvals: str = "wait"
    """wait, auto or deny (see Settings.approvals)."""
    emit: Callable[..., None] = lambda event, conn=None: None
    """Where progress events go (CLI, chat, HTTP): ``emit(event)``, or ``emit(event, conn)`` to store the event in
    the transaction of ``conn`` (a SQLAlchemy connection) with the record it reports."""
    stream_tokens: bool = False
    """Stream model replies: each piece is a ``token`` event, sent live and never stored (see ``Agent``)."""
    offline_rules: OfflineRules | None = None
    """The plug-ins' rules for the offline model (used when the model is ``offline``)."""
    delegates: dict[str, StepDelegate] = field(default_factory=dict)
    """Role -> where its agent steps run instead of here (task workers, ``agentmesh.runtime.remote``)."""
    models: dict[str, BaseChatModel] = field(default_factory=dict)
    """Chat models by name, built on first use (a test may put a scripted one here)."""
    prompt_versions: dict[str, str] = field(default_factory=dict)
    """Role -> ``version@sha`` of the prompt each role ran with."""
    step_seq: int = 0
    """The last step's number (steps are numbered in the order they start)."""
    owner: str | None = None
    """The process owning the run (``agentmesh.persistence.owner``); its writes check it still does."""

    def model(self, name: str | None = None) -> BaseChatModel:
        from agentmesh.models import shared_chat_model

        name = name or self.settings.model_name
        if name not in self.models:
            self.models[name] = shared_chat_model(self.settings, model=name, offline_rules=self.offline_rules)
        return self.models[name]

    def next_step_seq(self) -> int:
        self.step_seq += 1
        return self.step_seq


@dataclass(kw_only=True)
class StepScope:
    """The node being executed: its key in the journal and the audit, and its agent."""

    key: str
    """LangGraph's checkpoint namespace of the node's task: stable across retries and resumes."""
    node: str
    """The graph node's name."""
    agent: str | None
    """The node's role (its metadata's ``agent``), if any."""
    agent_runs: int = 0
    """How many agent runs this node has started; numbers them in the journal."""
    tool_calls: dict[str, int] = field(default_factory=dict)
    """How many identical ``use_tool`` calls the node made so far (numbers their call ids)."""


_run: ContextVar[RunContext | None] = ContextVar("agentmesh_run", default=None)
_step: ContextVar[StepScope | None] = ContextVar("agentmesh_step", default=None)


@contextlib.contextmanager
def running(run: RunContext | None) -> Iterator[RunContext | None]:
    """Make ``run`` the current run inside the block (the nodes the graph calls find it)."""
    token = _run.set(run)
    try:
        yield run
    finally:
        _run.reset(token)


@contextlib.contextmanager
def stepping(scope: StepScope) -> Iterator[StepScope]:
    """Make ``scope`` the current step inside the block."""
    token = _step.set(scope)
    try:
        yield scope
    finally:
        _step.reset(token)


def active_run() -> RunContext | None:
    """The current run, or None outside one."""
    return _run.get()


def current_run() -> RunContext:
    run = _run.get()
    if run is None:
        raise UserError("no agentmesh run is active: run the graph with agentmesh.run_goal (or `agentmesh run`)")
    return run


def current_step() -> StepScope:
    """The step being executed; outside a compiled node, one derived from LangGraph's own config."""
    scope = _step.get()
    if scope is None:
        from langgraph.config import get_config

        configurable = get_config().get("configurable", {})
        ns = configurable.get("checkpoint_ns") or "root"
        scope = StepScope(key=ns, node=ns.split(":")[0], agent=None)
        _step.set(scope)
    return scope
