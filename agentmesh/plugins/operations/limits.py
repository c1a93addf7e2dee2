"""The operations world's limits: the ``[world]`` table of the policy file, enforced by the world itself inside
the same transaction as the change each one guards (so two goals cannot both pass a check and both act).

    >>> limits = WorldLimits.model_validate({"services": {"checkout-api": {"max_replicas": 12}}})
    >>> limits.limits_for("checkout-api").max_replicas
    12
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ServiceLimits", "WorldLimits"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceLimits(_Strict):
    """How far one service may be scaled."""

    min_replicas: int = Field(default=1, ge=0)
    """Never fewer replicas than this."""
    max_replicas: int = Field(default=20, ge=1)
    """Never more replicas than this."""
    max_change_per_call: int = Field(default=5, ge=1)
    """The most one `scale_service` call may add or remove."""

    @model_validator(mode="after")
    def _ordered(self) -> ServiceLimits:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})")
        return self


class WorldLimits(_Strict):
    """Replica ranges, the cost ceiling, refund caps and protected datasets; see ``default_policy.toml``."""

    services: dict[str, ServiceLimits] = Field(default_factory=dict)
    """Limits per service name; services not named use `default_service`."""
    default_service: ServiceLimits = Field(default_factory=ServiceLimits)
    """Limits of every service not named in `services`."""
    hourly_cost_ceiling_usd: float = Field(default=100.0, gt=0)
    """The most all services together may cost per hour (replicas × cost per replica-hour)."""
    refund_cap_usd: float = Field(default=200.0, ge=0)
    """The most one ticket may be refunded in total, across every call."""
    daily_refund_budget_usd: float = Field(default=1000.0, ge=0)
    """The most all tickets together may be refunded per UTC day."""
    protected_datasets: list[str] = Field(default_factory=list)
    """Datasets that may be profiled but never cleaned."""

    def limits_for(self, service: str) -> ServiceLimits:
        return self.services.get(service, self.default_service)
