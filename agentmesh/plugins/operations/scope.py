"""What a goal can refer to in the operations world, for the gateway's scope guard (``agentmesh.gateway.scope``):
its services and datasets with their descriptions, and its open tickets with their subject, message and priority.

Resolved tickets are left out: nothing acts on them any more, and a closed ticket that shares a word with a goal
would only widen the scope.
"""

from __future__ import annotations

from sqlalchemy import inspect, select

from agentmesh.core.resources import Resources
from agentmesh.core.settings import Settings
from agentmesh.gateway.scope import EntityKind
from agentmesh.persistence.database import get_engine
from agentmesh.plugins.operations.world import World
from agentmesh.plugins.operations.world import _tables as t

__all__ = ["scope_entities"]


def scope_entities(settings: Settings, resources: Resources, *, create: bool = False) -> list[EntityKind] | None:
    """The world's services, datasets and open tickets, each with what it is; None when no world exists yet and
    ``create`` is false (a run that never touches the world does not create it)."""
    if not create and not resources.built(World) and not _exists(settings):
        return None
    world = resources.get(World)
    with world.engine.connect() as conn:
        services = conn.execute(select(t.services.c.name, t.services.c.description).order_by(t.services.c.name)).all()
        datasets = conn.execute(select(t.datasets.c.name, t.datasets.c.description).order_by(t.datasets.c.name)).all()
        tickets = conn.execute(select(t.tickets.c.id, t.tickets.c.subject, t.tickets.c.body, t.tickets.c.priority)
                               .where(t.tickets.c.status != "resolved").order_by(t.tickets.c.id)).all()
    return [
        EntityKind(kind="service", entities=[(r.name, r.description or "") for r in services], collectives=("fleet",)),
        EntityKind(kind="dataset", entities=[(r.name, r.description or "") for r in datasets]),
        EntityKind(kind="ticket", entities=[(r.id, f"{r.subject}. {r.body} ({r.priority} priority)") for r in tickets],
                   nouns=("request", "complaint"), collectives=("queue", "inbox", "backlog", "helpdesk")),
    ]



def _exists(settings: Settings) -> bool:
    """True when the database already holds a loaded world, found without creating one."""
    engine = get_engine(settings.resolved_database_url)
    if not inspect(engine).has_table(t.meta.name):
        return False
    with engine.connect() as conn:
        return conn.execute(select(t.meta.c.value).where(t.meta.c.name == "sample")).first() is not None
