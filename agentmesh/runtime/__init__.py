"""The runtime: a goal as one Prefect flow run, every graph node a Prefect task, run contexts built in one place.

    components   the composition root: plug-ins, tools, policy, resources; ``build_run_context``
    compile      any StateGraph made durable (every node a Prefect task)
    goal         the goal flow: run record, graph with a checkpointer, decision and artifacts
    run          ``run_goal`` / ``resume_run`` (and their async forms)
    approvals    a person's verdict on a pending call, then the run resumed
    remote       agent steps on task workers (``agentmesh worker --role``)
    goal_workers whole goals on task workers (``agentmesh worker --goals``, ``serve --processes``, ``run_goals``)
    graphs, plugins, prefect   the graph registry, plug-ins, the Prefect set-up (local server)
"""
