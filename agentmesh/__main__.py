"""`python -m agentmesh` is the `agentmesh` command."""

from agentmesh.interfaces.cli import main

main()
