"""`python -m agentmesh` is the `agentmesh` command."""

from agentmesh.cli import main

main()
