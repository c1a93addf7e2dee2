"""Built-in promotion of an evolved prompt version: a destructive tool, so it always waits for a person's approval
(`agentmesh approve`), exactly as a tool call that changes the world does. `agentmesh evolve --require-approval`
starts a run of the ``prompt_promotion`` graph that calls it."""

from typing import Annotated

from pydantic import Field

from agentmesh.core.exceptions import PolicyViolation
from agentmesh.tools import ToolContext, tool


@tool(risk="destructive", roles=["evolver"])
def promote_prompt(
    agent: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")],
    version: Annotated[int, Field(ge=1)],
    ctx: ToolContext,
) -> dict:
    """Make a prompt version of a role the active one. Only a version that an evolution round found better on
    the evidence, and that awaits approval, can be promoted this way.

    Args:
        agent: The role whose prompt changes, e.g. "optimizer".
        version: The prompt version to make active.
    """
    from agentmesh.persistence import audit
    from agentmesh.persistence.database import get_engine
    from agentmesh.prompts import versions

    engine = get_engine(ctx.settings.resolved_database_url)
    row = versions.get_version(engine, agent, version)
    if row["status"] != "pending_approval":
        raise PolicyViolation(f"version {version} of {agent} is {row['status']}, not awaiting approval: only a "
                              "version an evolution round found better on the evidence is promoted here")
    call = audit.get_call(engine, ctx.run_id, ctx.tool_call_id)
    approver = call.approver if call is not None and call.approver else "unknown"
    previous = versions.promote(engine, agent, version, actor=approver,
                                reason=f"approved in run {ctx.run_id} (`agentmesh approve`)")
    return {"agent": agent, "version": version, "previous": previous, "approved_by": approver}
