"""LangGraph's server as a way in: every registered graph — the bundled ones and those in the settings'
``graphs_paths`` — as a graph factory that ``langgraph dev`` and the Agent Server load by name
(``agentmesh.runtime.served``). The repository's ``langgraph.json`` names the bundled graphs here:

    {"dependencies": ["."], "graphs": {"mesh": "agentmesh.interfaces.langgraph_server:mesh", ...}}

A run the server starts on a thread is the agentmesh run whose id is the thread id: the same gateway, policy,
audit, budgets and Prefect flow run as ``agentmesh run``.
"""

from __future__ import annotations

from agentmesh.core.settings import get_settings
from agentmesh.runtime.graphs import list_graphs
from agentmesh.runtime.served import served_graph

# The server reads each graph from this module's namespace (``module.__dict__[name]``), so every registered
# graph is bound here by name when the module is imported.
globals().update({name: served_graph(name) for name in list_graphs(get_settings().graphs_paths)})
