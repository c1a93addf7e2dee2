"""The policy: what the agents may do to the world, in a file users edit.

The bundled ``default_policy.toml`` ships with the package; copy it to ``$AGENTMESH_HOME/policy.toml``
(``agentmesh world init`` does) and edit it there. World-state limits (replicas, cost, refunds,
protected datasets) are enforced inside the world, atomically; roles and approvals by the tool gateway.

    >>> policy = Policy.load(DEFAULT_POLICY_FILE)
    >>> policy.limits_for("checkout-api").max_replicas
    12
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .exceptions import ConfigError
from .settings import DEFAULT_POLICY_FILE

if TYPE_CHECKING:
    from .tools import Tool

__all__ = ["DEFAULT_POLICY_FILE", "Policy", "ServiceLimits"]


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


class Policy(_Strict):
    """Limits, protections, approvals and role permissions; see ``default_policy.toml`` for every key."""

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
    approval_required: list[str] = Field(default_factory=list)
    """Tool names that pause for a person before running (in addition to tools that ask for it themselves)."""
    roles: dict[str, list[str]] = Field(default_factory=dict)
    """Role -> tool names it may call; a tool absent from every list falls back to the tool's own `roles`."""
    concurrency: dict[str, int] = Field(default_factory=dict)
    """Tool name -> the most calls of it running at once across every goal, process and machine (enforced
    with a Prefect global concurrency limit named `agentmesh-tool-<name>`)."""
    approval_timeout_s: float | None = Field(default=None, gt=0)
    """Seconds an approval may wait; None waits forever."""
    approval_default: Literal["reject", "approve"] = "reject"
    """What happens to a pending approval when its deadline passes."""
    source: str = Field(default="", exclude=True)
    """The file the policy was loaded from."""

    @classmethod
    def load(cls, path: Path) -> Policy:
        """Read a policy file (TOML); an unreadable file or bad value is a ConfigError naming the file."""
        path = Path(path)
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"policy file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"policy file {path}: cannot read it ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"policy file {path}: not valid TOML ({exc})") from None
        try:
            return cls.model_validate({**data, "source": str(path)})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise ConfigError(f"policy file {path}: {where}: {err['msg']}") from None

    @classmethod
    def default(cls) -> Policy:
        """The bundled default policy."""
        return cls.load(DEFAULT_POLICY_FILE)

    def limits_for(self, service: str) -> ServiceLimits:
        return self.services.get(service, self.default_service)

    def allowed_roles(self, tool: Tool) -> tuple[str, ...]:
        """The roles that may call a tool: those whose list names it, else the tool's own defaults."""
        named = tuple(sorted(role for role, names in self.roles.items() if tool.name in names))
        return named if named or self._listed(tool.name) else tuple(tool.roles)

    def _listed(self, name: str) -> bool:
        return any(name in names for names in self.roles.values())

    def needs_approval(self, tool: Tool) -> bool:
        return tool.requires_approval or tool.name in self.approval_required

    def summary(self) -> dict[str, Any]:
        """The policy as plain data, for ``agentmesh policy show --json``."""
        return {"source": self.source, **self.model_dump(mode="json")}
