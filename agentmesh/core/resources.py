"""Resources: the typed dependencies a run carries for its tools — a domain's state, a client of a real system.

A plug-in registers a factory per type; a tool asks for the type it needs and gets the one instance, built the
first time anything asks (compare pydantic-ai's ``RunContext[Deps]``: the framework never knows the shape).
A run that asks for nothing builds nothing — the sample operations world is not even created for a graph that
never calls its tools.

    resources = Resources({World: lambda: World.open(settings)})
    world = resources.get(World)            # built now, the same object from now on
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agentmesh.core.exceptions import ConfigError

__all__ = ["Resources"]

T = TypeVar("T")


class Resources:
    """Instances by type, each built once, on first use, by the factory registered for its type."""

    def __init__(self, factories: Mapping[type, Callable[[], Any]] | None = None) -> None:
        self._factories: dict[type, Callable[[], Any]] = dict(factories or {})
        self._built: dict[type, Any] = {}
        self._lock = threading.Lock()

    def get(self, kind: type[T]) -> T:
        """The instance of ``kind``; ConfigError when no plug-in provides one."""
        found = self._built.get(kind)
        if found is not None:
            return found  # type: ignore[no-any-return]
        with self._lock:
            if kind not in self._built:
                factory = self._factories.get(kind)
                if factory is None:
                    known = ", ".join(sorted(k.__name__ for k in self._factories)) or "none"
                    raise ConfigError(f"no plug-in provides a {kind.__name__} (resources provided: {known}); "
                                      "enable the plug-in that does in the `plugins` setting")
                self._built[kind] = factory()
            return self._built[kind]  # type: ignore[no-any-return]

    def provides(self, kind: type) -> bool:
        return kind in self._factories

    def built(self, kind: type) -> bool:
        """Whether the instance of ``kind`` exists yet (nothing is built by asking this)."""
        return kind in self._built
