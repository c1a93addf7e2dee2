"""Built-in operator notice: a message to the operations team's outbox."""

from typing import Annotated, Literal

from pydantic import Field

from agentmesh.plugins.operations.world import World
from agentmesh.tools import ToolContext, tool


@tool(risk="write")
def notify_operations(
    message: Annotated[str, Field(min_length=1, max_length=2000)],
    severity: Literal["info", "warning", "critical"],
    ctx: ToolContext,
) -> dict:
    """Send a notice to the operations team.

    Args:
        message: What the team should know or do.
        severity: info, warning or critical.
    """
    return ctx.resource(World).notify_operations(message, severity, key=ctx.idempotency_key)
