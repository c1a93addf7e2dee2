"""The package's layers, read from the source: no import cycle among agentmesh modules (imports inside functions
count; ``if TYPE_CHECKING:`` blocks do not), and every import points down the layer order the package docstring
of ``agentmesh`` states. A module is in the layer of its longest matching prefix."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import agentmesh

PACKAGE = Path(agentmesh.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "_bundled" in path.parts:
            continue
        parts = ["agentmesh", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the agentmesh modules it imports (anywhere in the file, except under TYPE_CHECKING)."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(branch.test) for child in branch.body for node in ast.walk(child)}
        package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if package else module.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join([*base, node.module] if node.module else base)
                else:
                    source = node.module or ""
                names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                         for alias in node.names]
            else:
                continue
            edges[module] |= {t for t in map(known, names) if t and t != module}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def layers() -> list[list[str]]:
    """The layer order as the package docstring writes it: one line per layer, ``N. name: modules``."""
    lines = re.findall(r"(?m)^\s*(\d+)\. [^:]+: (.+)$", agentmesh.__doc__ or "")
    return [[m.strip() for m in modules.split(",")] for _, modules in lines]


def layer_of(module: str, order: list[list[str]]) -> int:
    best, level = "", -1
    for i, prefixes in enumerate(order):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, level = prefix, i
    return level


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_module_is_in_a_layer_and_imports_point_down() -> None:
    order = layers()
    assert len(order) >= 8, "the agentmesh package docstring lists the layers"
    edges = import_graph()
    unplaced = [m for m in edges if layer_of(m, order) < 0]
    assert not unplaced, f"modules in no layer: {unplaced}"
    upward = [f"{m} (layer {layer_of(m, order)}) imports {t} (layer {layer_of(t, order)})"
              for m, targets in edges.items() for t in targets if layer_of(t, order) > layer_of(m, order)]
    assert not upward, "imports pointing up:\n" + "\n".join(sorted(upward))


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_readme_layout_names_every_layer() -> None:
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    for modules in layers():
        for module in modules:
            if module not in ("agentmesh", "agentmesh.__main__"):
                assert module.removeprefix("agentmesh.").split(".")[0] in layout, f"{module} missing from README Layout"
