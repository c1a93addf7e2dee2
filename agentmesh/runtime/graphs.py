"""The graph registry: ``langgraph.json`` files name the graphs, in the bundled ``graphs/`` folder and in
the user's ``graphs_paths`` — the same file the LangGraph CLI reads.

    {"graphs": {"mesh": "./mesh.py:graph"}}

A graph entry points at a ``StateGraph`` (or a compiled graph, or a function returning one). Its module's
docstring gives the description (first line) and a module-level ``EXAMPLE_GOAL`` the example goal.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentmesh.core.bundled import bundled
from agentmesh.core.exceptions import ConfigError, NotFoundError

if TYPE_CHECKING:
    from langgraph.graph import StateGraph

__all__ = ["GraphSpec", "list_graphs", "get_graph"]


@dataclass(kw_only=True)
class GraphSpec:
    """One registered graph."""

    name: str
    """The name `--graph` takes."""
    path: Path
    """The module file."""
    attribute: str
    """The module attribute holding the graph."""

    @cached_property
    def module(self) -> Any:
        digest = hashlib.sha1(str(self.path).encode()).hexdigest()[:10]
        name = f"agentmesh_graph_{digest}_{self.path.stem}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, self.path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot import graph module {self.path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise ConfigError(f"graph {self.name!r} ({self.path}) failed to import: {type(exc).__name__}: {exc}") from None
        return module

    @cached_property
    def builder(self) -> StateGraph:
        from langgraph.graph import StateGraph

        value = getattr(self.module, self.attribute, None)
        if value is None:
            raise ConfigError(f"graph {self.name!r}: {self.path} has no attribute {self.attribute!r}")
        if callable(value) and not isinstance(value, StateGraph) and not hasattr(value, "builder"):
            value = value()
        if hasattr(value, "builder") and isinstance(value.builder, StateGraph):
            value = value.builder  # a compiled graph: agentmesh recompiles it durably
        if not isinstance(value, StateGraph):
            raise ConfigError(f"graph {self.name!r} is a {type(value).__name__}, not a LangGraph StateGraph")
        return value

    @property
    def description(self) -> str:
        doc = (self.module.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @property
    def example_goal(self) -> str:
        return str(getattr(self.module, "EXAMPLE_GOAL", ""))


def _read(folder: Path) -> list[GraphSpec]:
    manifest = folder / "langgraph.json"
    if not manifest.is_file():
        raise ConfigError(f"graphs folder {folder} has no langgraph.json")
    try:
        entries = json.loads(manifest.read_text())["graphs"]
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{manifest}: not a langgraph.json with a 'graphs' object ({exc})") from None
    specs = []
    for name, target in entries.items():
        target = target["path"] if isinstance(target, dict) else target
        file, _, attribute = str(target).partition(":")
        specs.append(GraphSpec(name=name, path=(folder / file).resolve(), attribute=attribute or "graph"))
    return specs


def list_graphs(paths: list[Path] | None = None) -> dict[str, GraphSpec]:
    graphs: dict[str, GraphSpec] = {}
    for folder in [bundled("graphs"), *(paths or [])]:
        for spec in _read(Path(folder)):
            graphs[spec.name] = spec
    return graphs


def get_graph(name: str, paths: list[Path] | None = None) -> GraphSpec:
    graphs = list_graphs(paths)
    if name not in graphs:
        raise NotFoundError(f"no graph {name!r}; known graphs: {', '.join(sorted(graphs))}")
    return graphs[name]
