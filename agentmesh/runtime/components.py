"""The composition root of a run: the components an installation shares, and the one factory of run contexts.

``components(settings)`` — the database, the plug-ins, the tool registry, the policy and the plug-ins'
resources — is built once per process and home. ``build_run_context`` makes the ``RunContext`` of one run from
them; local runs, resumes, remote task workers, eval trials and a gateway used on its own all build theirs here,
and Prefect is configured from the settings passed in before anything talks to it.

    parts = components(settings)
    run = build_run_context(settings, run_id="r1", goal="...", graph="mesh")
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from agentmesh.agents.context import Budget, RunContext, StepDelegate
from agentmesh.core.resources import Resources
from agentmesh.core.settings import Settings
from agentmesh.gateway import Gateway
from agentmesh.gateway.policy import Policy
from agentmesh.gateway.scope import EntityKind, Scope, resolve_scope
from agentmesh.persistence.database import get_engine
from agentmesh.persistence.events import event_log
from agentmesh.persistence.runs import find_run, update_run
from agentmesh.persistence.tables import model_calls, steps
from agentmesh.runtime.plugins import Plugin, load_plugins
from agentmesh.runtime.prefect import configure_prefect
from agentmesh.tools import Tool, ToolRegistry

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agentmesh.models.offline import OfflineRules

__all__ = ["Components", "EventSink", "build_run_context", "components"]

EventSink = Callable[[dict[str, Any]], None]


@dataclass(kw_only=True)
class Components:
    """What the runs of one process and home share."""

    settings: Settings
    """The settings they were built from."""
    engine: Engine
    """The agentmesh database."""
    plugins: list[Plugin]
    """The plug-ins the settings enable, in order."""
    registry: ToolRegistry
    """Built-in tools, the plug-ins' tools, then the user's."""
    policy: Policy
    """The policy file, with the plug-ins' tables validated."""
    resources: Resources
    """The plug-ins' resources, built on first use."""
    needs: dict[str, tuple[type, ...]] = field(default_factory=dict)
    """Tool name -> the resources of the plug-in that brought it: built before the call's timeout starts."""

    @property
    def offline_rules(self) -> OfflineRules | None:
        """The first enabled plug-in's rules for the offline model."""
        return next((p.offline_rules for p in self.plugins if p.offline_rules is not None), None)


_components: dict[tuple[str, str], Components] = {}


def components(settings: Settings) -> Components:
    """The components for these settings, built once per process (again when given new settings)."""
    key = (settings.resolved_database_url, str(settings.resolved_home))
    found = _components.get(key)
    if found is None or found.settings is not settings:
        plugins = load_plugins(settings.plugins)
        tables = {name: model for p in plugins for name, model in p.policy_tables.items()}
        policy = Policy.load(settings.resolved_policy_file, sections=tables)
        registry = ToolRegistry.load([*(folder for p in plugins for folder in p.tools), *settings.tools_paths],
                                     extra=_mcp_tools(settings, policy))
        policy.check_names(registry.tools, known_roles(settings, registry))
        factories = {kind: _bind(make, settings, policy) for p in plugins for kind, make in p.resources.items()}
        found = _components[key] = Components(
            settings=settings, engine=get_engine(settings.resolved_database_url), plugins=plugins,
            registry=registry, policy=policy, resources=Resources(factories), needs=_needs(plugins, registry),
        )
    return found


def _needs(plugins: list[Plugin], registry: ToolRegistry) -> dict[str, tuple[type, ...]]:
    needs = {}
    for plugin in plugins:
        folders = [folder.resolve() for folder in plugin.tools]
        for tool in registry:
            if tool.source and Path(tool.source).resolve().parent in folders:
                needs[tool.name] = tuple(plugin.resources)
    return needs


def known_roles(settings: Settings, registry: ToolRegistry) -> set[str]:
    """The roles that exist: those with a prompt file, and those a tool names."""
    from agentmesh.prompts.templates import list_roles

    return {*list_roles(settings.prompts_path), *(role for t in registry for role in t.roles)}


def _mcp_tools(settings: Settings, policy: Policy) -> list[Tool]:
    """The configured MCP servers' tools (their servers started or reached now, the connections kept)."""
    if not settings.mcp.servers:
        return []  # no import of the MCP SDK for an installation that uses none
    from agentmesh.tools.mcp import mcp_tools

    return mcp_tools(settings, risk=policy.risk)


def _bind(make: Callable[[Settings, Policy], Any], settings: Settings, policy: Policy) -> Callable[[], Any]:
    return lambda: make(settings, policy)


def build_run_context(settings: Settings, *, run_id: str, goal: str, graph: str, approvals: str | None = None,
                      on_event: EventSink | None = None, chat_model: BaseChatModel | None = None,
                      delegates: dict[str, StepDelegate] | None = None, on_worker: bool = False,
                      stream_tokens: bool = False, owner: str | None = None) -> RunContext:
    """The context of one run: its components, gateway, budget (what the run already spent is counted) and event
    stream. ``stream_tokens``: stream model replies as ``token`` events (live only, never stored). ``delegates``:
    roles whose steps run elsewhere (``agentmesh.runtime.remote``); ``on_worker``: this is such a step, on a task
    worker, whose approvals pause by raising. ``owner``: the process owning the run; the run's writes check it still
    does (``agentmesh.persistence.owner``)."""
    configure_prefect(settings)
    parts = components(settings)
    mode = approvals or settings.approvals
    emit = _emitter(run_id, on_event, parts.engine)
    gateway = Gateway(run_id=run_id, settings=settings, engine=parts.engine, registry=parts.registry,
                      policy=parts.policy, resources=parts.resources, approvals=mode, emit=emit,
                      needs=parts.needs, pause_by_raising=on_worker, scope=run_scope(parts, run_id, goal),
                      resolve_scope=lambda: run_scope(parts, run_id, goal, create=True, emit=emit), owner=owner)
    budget, step_seq = _spent(settings, parts.engine, run_id)
    run = RunContext(run_id=run_id, goal=goal, graph=graph, settings=settings, engine=parts.engine,
                     registry=parts.registry, policy=parts.policy, resources=parts.resources, gateway=gateway,
                     budget=budget, approvals=mode, emit=emit, offline_rules=parts.offline_rules,
                     stream_tokens=stream_tokens, owner=owner, step_seq=step_seq)
    if chat_model is not None:
        run.models[settings.model_name] = chat_model
    run.delegates = dict(delegates or {})
    return run


def run_scope(parts: Components, run_id: str, goal: str, *, create: bool = False,
              emit: Callable[..., None] | None = None) -> Scope | None:
    """The run's scope: the one recorded with the run, or — the first time — resolved from the goal against the
    plug-ins' entities and recorded (``runs.scope``; a ``scope`` event). None when a plug-in's state does not exist
    yet and ``create`` is false: a run that never touches a domain does not create it just to resolve a scope (the
    gateway resolves it, with ``create``, before the first write that names a target). A gateway used without a run
    record resolves it from the goal it was given, each time."""
    record = find_run(parts.engine, run_id)
    if record is not None and record.get("scope") is not None:
        return Scope.from_json(record["scope"], goal=record["goal"])
    kinds: list[EntityKind] = []
    for plugin in parts.plugins:
        if plugin.scope_entities is not None:
            listed = plugin.scope_entities(parts.settings, parts.resources, create=create)
            if listed is None:
                return None
            kinds.extend(listed)
    scope = resolve_scope(goal, kinds)
    if record is not None:
        update_run(parts.engine, run_id, scope=scope.as_json())
        if emit is not None:
            emit({"type": "scope", "scope": scope.as_json()})
    return scope


def _spent(settings: Settings, engine: Engine, run_id: str) -> tuple[Budget, int]:
    """The run's budget with what it already spent counted, and the number of its last step; one read."""
    budget = Budget(max_model_calls=settings.max_model_calls, max_tokens=settings.max_tokens,
                    max_cost_usd=settings.max_cost_usd, max_seconds=settings.max_seconds)
    with engine.connect() as conn:
        calls, tokens_in, tokens_out, cost = conn.execute(
            select(func.count(), func.coalesce(func.sum(model_calls.c.input_tokens), 0),
                   func.coalesce(func.sum(model_calls.c.output_tokens), 0),
                   func.coalesce(func.sum(model_calls.c.cost_usd), 0.0))
            .where(model_calls.c.run_id == run_id)
        ).one()
        last_step = conn.execute(select(func.max(steps.c.seq)).where(steps.c.run_id == run_id)).scalar()
    budget.model_calls, budget.input_tokens, budget.output_tokens, budget.cost_usd = calls, tokens_in, tokens_out, cost
    return budget, last_step or 0


def _emitter(run_id: str, sink: EventSink | None, engine: Engine) -> Callable[..., None]:
    log = event_log(engine)

    def emit(event: dict[str, Any], conn: Any = None) -> None:
        event.setdefault("run_id", run_id)
        event.setdefault("time", time.time())
        if event.get("type") == "token":  # live only: one stored row per token would multiply the writes
            log.publish(run_id, event)
        else:
            log.append(run_id, event, conn)
        if sink is not None:
            with contextlib.suppress(Exception):  # a broken display must not break a run
                sink(event)

    return emit
