"""Import shim so run.py can import the plain graph module by name."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("plain", Path(__file__).parent / "graphs" / "plain.py")
_module = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_module)  # type: ignore[union-attr]
graph = _module.graph
