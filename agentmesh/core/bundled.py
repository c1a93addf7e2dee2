"""Where the bundled prompts, tools, graphs and eval suites live, and the default policy file.

In a wheel they ship inside the package (``agentmesh/_bundled/``); in a source checkout they are the
repository's top-level folders.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_POLICY_FILE", "bundled"]

_PACKAGE = Path(__file__).resolve().parent.parent

DEFAULT_POLICY_FILE = _PACKAGE / "default_policy.toml"
"""The policy in force when neither the settings nor the home name one."""


def bundled(kind: str) -> Path:
    """The bundled folder of one kind: ``prompts``, ``tools``, ``graphs`` or ``evals``."""
    inside = _PACKAGE / "_bundled" / kind
    return inside if inside.is_dir() else _PACKAGE.parent / kind
