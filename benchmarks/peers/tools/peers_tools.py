"""The peer benchmark's three tools as agentmesh tools: the plain functions of ``workload.py``, registered."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import workload  # noqa: E402

from agentmesh import tool  # noqa: E402

get_metrics = tool(workload.get_metrics)
compute_reduction = tool(workload.compute_reduction)
lookup_owner = tool(workload.lookup_owner)
