"""Run the restock graph from Python: Prefect task runs per node, policy and audit come with it.

    python examples/my_graph/run.py
"""

from pathlib import Path

from agentmesh import Settings, compile, run_goal

HERE = Path(__file__).parent
settings = Settings(tools_paths=[HERE / "tools"], graphs_paths=[HERE / "graphs"])

result = run_goal("Restock SKU-1, SKU-2 and SKU-3 up to 40 units each", graph="restock", settings=settings,
                  approvals="auto")
print(result["decision"]["summary"])
for step in result["steps"]:
    print(step["node"], step["agent"], step["prefect_task_run_id"],
          [(c["tool"], c["status"], c.get("reason")) for c in step["tool_calls"]])

# A plain StateGraph, compiled durably on its own: each node becomes a Prefect task.
from plain_graph import graph  # noqa: E402  (examples/my_graph/plain_graph.py re-exports graphs/plain.py)

print(compile(graph).invoke({"goal": "count these words"}))
