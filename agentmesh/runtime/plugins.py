"""Plug-ins: a domain's tools, resources, policy table, offline-model rules and eval worlds, registered together.

The sample operations world is one (``agentmesh.plugins.operations``), registered exactly as a user's own
domain would be: by name in the ``plugins`` setting (default ``["operations"]``)::

    # my_domain/plugin.py
    plugin = Plugin(name="warehouse", tools=[Path(__file__).parent / "tools"],
                    resources={Warehouse: lambda settings, policy: Warehouse.connect(settings)})

    AGENTMESH_PLUGINS='["operations", "my_domain.plugin"]' agentmesh run "..."

A short name is a bundled plug-in (``agentmesh.plugins.<name>``); ``module`` or ``module:attribute`` imports a
user's (the attribute defaults to ``plugin``). Nothing of a plug-in is built until a run asks for it: its
resources are made the first time a tool asks for their type.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentmesh.core.exceptions import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from agentmesh.core.settings import Settings
    from agentmesh.gateway.policy import Policy
    from agentmesh.gateway.scope import EntityKind
    from agentmesh.models.offline import OfflineRules

__all__ = ["Plugin", "load_plugins"]

ResourceFactory = Callable[["Settings", "Policy"], Any]
"""Builds a resource for a run's settings and policy (called once per process and home, on first use)."""


@dataclass(kw_only=True)
class Plugin:
    """What one domain adds to agentmesh."""

    name: str
    """Shown by `agentmesh doctor` and in errors."""
    description: str = ""
    """One line about the domain."""
    tools: list[Path] = field(default_factory=list)
    """Folders of tool files (each `*.py`'s decorated functions), loaded after the built-in tools."""
    resources: dict[type, ResourceFactory] = field(default_factory=dict)
    """Type -> factory: what the domain's tools ask for with ``ctx.resource(Type)``."""
    policy_tables: dict[str, type[BaseModel]] = field(default_factory=dict)
    """Policy-file table name -> the model validating it (e.g. ``{"world": WorldLimits}``)."""
    offline_rules: OfflineRules | None = None
    """How the offline model plans, investigates and acts in this domain."""
    eval_worlds: Callable[..., Any] | None = None
    """``eval_worlds(root, base_settings)``: per-trial copies of the domain's state for eval scenarios
    (see ``agentmesh.evaluation.runner.TrialWorlds``)."""
    scope_entities: Callable[..., Iterable[EntityKind] | None] | None = None
    """``scope_entities(settings, resources, *, create)``: the entities a goal can refer to, by kind, each with what it is (its
    description, a ticket's subject and message); None when the domain's state does not exist yet and ``create`` is
    false. A run's scope is resolved against them once, at its start or before its first targeted write
    (``agentmesh.gateway.scope``)."""


_loaded: dict[str, Plugin] = {}


def load_plugins(names: Iterable[str]) -> list[Plugin]:
    """The plug-ins the settings name, imported once per process; ConfigError naming a bad one."""
    return [_load(name) for name in dict.fromkeys(names)]


def _load(name: str) -> Plugin:
    found = _loaded.get(name)
    if found is not None:
        return found
    module_name, _, attribute = name.partition(":")
    if "." not in module_name and not attribute:
        module_name = f"agentmesh.plugins.{module_name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"plug-in {name!r} not found: no module {module_name!r} "
                              "(bundled: operations; yours: 'package.module' or 'package.module:attribute')") from None
        raise ConfigError(f"plug-in {name!r} failed to import: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"plug-in {name!r} failed to import: {type(exc).__name__}: {exc}") from None
    plugin = getattr(module, attribute or "plugin", None)
    if not isinstance(plugin, Plugin):
        raise ConfigError(f"plug-in {name!r}: {module_name} has no Plugin named {attribute or 'plugin'!r}")
    _loaded[name] = plugin
    return plugin
