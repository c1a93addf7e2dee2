"""The four-agent mesh: the strategist plans, the analyst investigates, the optimizer acts within policy, the innovator offers alternatives; the strategist decides."""

from agentmesh import Agent, Mesh

EXAMPLE_GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"

graph = Mesh(
    strategist=Agent(role="strategist"),
    workers=[Agent(role="analyst"), Agent(role="optimizer"), Agent(role="innovator")],
).build()
