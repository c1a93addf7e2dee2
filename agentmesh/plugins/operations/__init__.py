"""The sample operations world as a plug-in: services, datasets, support tickets and an operator outbox.

It is registered exactly as a user's own domain would be (``plugins = ["operations"]``, the default; see
``agentmesh.runtime.plugins``) and brings:

- its tools (the bundled ``tools/operations/`` folder): ``get_service_metrics``, ``scale_service``,
  ``clean_dataset``, ``resolve_ticket`` …, each asking for the ``World`` with ``ctx.resource(World)``;
- the ``World`` resource, created (and seeded with the default sample) the first time a tool asks for it;
- its limits, the policy file's ``[world]`` table (``WorldLimits``), enforced by the world;
- the offline model's rules for its goals (``agentmesh.plugins.operations.offline``);
- trial worlds for eval scenarios (``agentmesh.plugins.operations.evals``);
- what a goal can refer to — services, datasets, open tickets — for the gateway's scope guard
  (``agentmesh.plugins.operations.scope``).
"""

from __future__ import annotations

from agentmesh.core.bundled import bundled
from agentmesh.core.settings import Settings
from agentmesh.gateway.policy import Policy
from agentmesh.plugins.operations.evals import WorldFactory
from agentmesh.plugins.operations.limits import WorldLimits
from agentmesh.plugins.operations.offline import OperationsRules
from agentmesh.plugins.operations.scope import scope_entities
from agentmesh.plugins.operations.world import World
from agentmesh.runtime.plugins import Plugin

__all__ = ["World", "WorldLimits", "plugin"]


def _open_world(settings: Settings, policy: Policy) -> World:
    return World.open(settings, policy.section("world", WorldLimits))


plugin = Plugin(
    name="operations",
    description="The sample operations world: services, datasets, support tickets and an operator outbox.",
    tools=[bundled("tools") / "operations"],
    resources={World: _open_world},
    policy_tables={"world": WorldLimits},
    offline_rules=OperationsRules(),
    eval_worlds=WorldFactory,
    scope_entities=scope_entities,
)
