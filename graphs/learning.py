"""Learning from outcomes: the four-agent mesh with decision memory — past decisions, their outcomes and operator feedback on similar goals are recalled and shape the plan.

    recall (inside plan) → plan → dispatch ⇉ workers → review → decide

Memory is ``agentmesh.DecisionMemory``: the runs of this agentmesh database that ended, with their decisions
and outcomes, the feedback operators gave (``agentmesh runs feedback RUN_ID --score 1 --note "…"``) and the eval
results in ``$AGENTMESH_HOME/eval-reports/`` (each scenario's goal, reward and why it failed), ranked by
IDF-weighted word overlap with the new goal. The closest few are shown to the strategist under
"# Similar past decisions" with their similarity and the words they share, so every recollection is explained.
"""

from agentmesh import Agent, DecisionMemory, Mesh

EXAMPLE_GOAL = "payments-api p95 is too high under the new load; bring it under 250 ms within policy."

graph = Mesh(
    strategist=Agent(role="strategist"),
    workers=[Agent(role="analyst"), Agent(role="optimizer"), Agent(role="innovator")],
    memory=DecisionMemory(),
).build()
