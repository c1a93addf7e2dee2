"""Built-in service tools: read metrics, try a replica count, scale within policy, restart, roll back."""

from typing import Annotated

from pydantic import Field

from agentmesh.plugins.operations.world import World
from agentmesh.tools import ToolContext, tool

ServiceName = Annotated[str, Field(min_length=1, max_length=64)]
Replicas = Annotated[int, Field(ge=0, le=100_000)]


@tool
def list_services(ctx: ToolContext) -> dict:
    """List every service with its replicas, CPU, p95 latency, error rate, hourly cost and status,
    plus what each service is (its description, with the names people call it by), the total hourly cost and
    the policy's cost ceiling."""
    return ctx.resource(World).list_services()


@tool(target="service")
def get_service_metrics(service: ServiceName, ctx: ToolContext) -> dict:
    """Read one service's current metrics: replicas, CPU %, p95 latency (ms), error rate, request rate,
    capacity per replica, hourly cost and the policy's replica limits.

    Args:
        service: Name of the service, e.g. "checkout-api".
    """
    return ctx.resource(World).get_service_metrics(service)


@tool(roles=["optimizer", "innovator"], target="service")
def simulate_scaling(service: ServiceName, replicas: Replicas, ctx: ToolContext) -> dict:
    """Predict a service's CPU, p95 latency, error rate and cost at another replica count, and whether
    policy would allow it. Changes nothing.

    Args:
        service: Name of the service, e.g. "checkout-api".
        replicas: The replica count to try.
    """
    return ctx.resource(World).simulate_scaling(service, replicas)


@tool(risk="write", target="service")
def scale_service(service: ServiceName, replicas: Replicas, ctx: ToolContext) -> dict:
    """Set the replica count of a service. Policy limits the range, the change per call and the total
    hourly cost; the result shows the metrics before and after.

    Args:
        service: Name of the service, e.g. "checkout-api".
        replicas: The new replica count.
    """
    return ctx.resource(World).scale_service(service, replicas, key=ctx.idempotency_key)


@tool(risk="write", target="service")
def restart_service(service: ServiceName, ctx: ToolContext) -> dict:
    """Restart every replica of a service. Clears a transient fault such as a memory leak (memory near 100%,
    latency and errors high at any load); does not change the release, the load or the replica count, so it
    does not fix an overload or a bad release. The result shows the metrics before and after.

    Args:
        service: Name of the service, e.g. "auth-api".
    """
    return ctx.resource(World).restart_service(service, key=ctx.idempotency_key)


@tool(risk="write", target="service")
def rollback_service(service: ServiceName, ctx: ToolContext) -> dict:
    """Roll a service back to the release before the one deployed (one release per call). Fixes errors or
    latency a bad release brought (compare the metrics' release_error_rate with previous_release_error_rate,
    and release_base_p95_ms with previous_release_base_p95_ms); replicas are unchanged. The result shows the
    versions and the metrics before and after.

    Args:
        service: Name of the service, e.g. "search-api".
    """
    return ctx.resource(World).rollback_service(service, key=ctx.idempotency_key)
