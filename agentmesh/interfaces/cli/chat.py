"""`agentmesh chat`: the terminal chat (agentmesh.interfaces.chat)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def chat(
        graph: Annotated[str | None, typer.Option("--graph", "-g", help="The graph goals run on.")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="offline, or an OpenAI-compatible model name.")] = None,
    ) -> None:
        """Chat with the agents: type a goal, watch it live, approve inline, follow up in the same thread."""
        from agentmesh.core.settings import get_settings
        from agentmesh.interfaces.chat import ChatSession
        from agentmesh.runtime.graphs import get_graph

        settings = get_settings(model=model)
        name = get_graph(graph or settings.graph, settings.graphs_paths).name
        ChatSession(settings=settings, graph=name).run()
