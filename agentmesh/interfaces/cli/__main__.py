from agentmesh.interfaces.cli import main

main()
