"""Sample worlds: a folder with ``world.json`` and ``datasets/``; ``default`` ships in the package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentmesh.core.exceptions import ConfigError, NotFoundError

__all__ = ["SAMPLES_DIR", "load_sample", "sample_dir"]

SAMPLES_DIR = Path(__file__).resolve().parent
BUNDLED = {"default": SAMPLES_DIR / "sample"}


def sample_dir(name: str) -> Path:
    """The folder of a bundled sample by name, or a user's folder by path."""
    if name in BUNDLED:
        return BUNDLED[name]
    path = Path(name).expanduser()
    if (path / "world.json").is_file():
        return path.resolve()
    raise NotFoundError(f"no sample world {name!r}; bundled: {', '.join(BUNDLED)} (or a folder with world.json)")


def load_sample(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "world.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"sample world {folder}: cannot read world.json ({exc})") from None
    for part in ("services", "customers", "orders", "tickets", "datasets"):
        data.setdefault(part, [])
    return data
