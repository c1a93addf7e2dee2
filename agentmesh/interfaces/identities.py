"""Named identities for ``agentmesh serve``: each bearer token is a person (or a service) with roles.

    # identities.toml — named by AGENTMESH_IDENTITIES_FILE (or `identities_file` in agentmesh.toml)
    [identities.alice]
    token = "${ALICE_TOKEN}"          # read from the environment when the server starts; a literal works too
    roles = ["submit", "approve"]

    [identities.bob]
    token = "${BOB_TOKEN}"
    roles = ["approve"]

Roles: ``submit`` starts and cancels goals, ``approve`` decides pending calls, ``admin`` may do both; every identity
may read runs, events and audits. The HTTP API, the OpenAI-compatible endpoint and the web page resolve the token of
each request to its identity, and the runs and the audit record its name: who started a run, who approved or
rejected each call. ``AGENTMESH_API_TOKEN`` (or ``--token``) is still accepted, as an identity named ``api`` with every
role. With neither, a loopback server is open and records names as before (``http``, ``chat``).

    identities = Identities.load(settings, token=None)
    identities.resolve("s3cret")      # Identity(name='alice', roles=frozenset({'submit', 'approve'})) or None
"""

from __future__ import annotations

import functools
import hmac
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from agentmesh.core.exceptions import ConfigError
from agentmesh.core.settings import Settings
from agentmesh.core.toml_lines import close_match, syntax_error, where

__all__ = ["ANONYMOUS", "ROLES", "Identities", "Identity", "current_identity", "require"]

Role = Literal["submit", "approve", "admin"]
ROLES: tuple[Role, ...] = ("submit", "approve", "admin")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(kw_only=True, frozen=True)
class Identity:
    """Who sent a request."""

    name: str
    """Recorded as the run's starter and as the approver of its calls."""
    roles: frozenset[str] = field(default_factory=lambda: frozenset(ROLES))
    """What the identity may do (``admin`` implies every role)."""
    anonymous: bool = False
    """True when the server has no tokens at all (a loopback server for one person)."""

    def can(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles


ANONYMOUS = Identity(name="anonymous", anonymous=True)
"""The identity of every request to a server without tokens."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1)
    """The bearer token, or ``${VAR}`` to read it from the environment."""
    roles: list[Role] = Field(min_length=1)
    """``submit``, ``approve``, ``admin``."""


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identities: dict[str, _Entry]


@dataclass(kw_only=True)
class Identities:
    """Tokens and the identities they stand for."""

    by_token: dict[str, Identity] = field(default_factory=dict)
    """Token -> identity."""

    @property
    def enabled(self) -> bool:
        """True when requests need a token."""
        return bool(self.by_token)

    @classmethod
    def load(cls, settings: Settings, *, token: str | None = None) -> Identities:
        """The identities file (``settings.identities_file``) and the single API token (``token``, default
        ``AGENTMESH_API_TOKEN``); a bad file is a ConfigError naming its line."""
        found = cls()
        token = token if token is not None else (os.environ.get("AGENTMESH_API_TOKEN") or None)
        if settings.identities_file is not None:
            found.by_token.update(_read(Path(settings.identities_file)))
        if token:
            found.by_token.setdefault(token, Identity(name="api"))
        return found

    def resolve(self, token: str | None) -> Identity | None:
        """The identity of a bearer token (compared in constant time), or None."""
        if not self.enabled:
            return ANONYMOUS
        given = (token or "").encode()
        match = None
        for known, identity in self.by_token.items():
            if hmac.compare_digest(given, known.encode()):
                match = identity
        return match


def _read(path: Path) -> dict[str, Identity]:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"identities file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(syntax_error("identities file", path, exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"identities file {path}: cannot read it ({exc})") from None
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a misspelt key explains the rest
        loc = tuple(str(p) for p in err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown key{close_match(loc[-1], ['identities', 'token', 'roles'])}"
        raise ConfigError(f"identities file {where(path, text, loc)}: {'.'.join(loc)}: {message}") from None
    found: dict[str, Identity] = {}
    for name, entry in parsed.identities.items():
        at = where(path, text, ("identities", name, "token"))
        if not _NAME.match(name):
            raise ConfigError(f"identities file {at}: {name!r} is not a usable name (letters, digits, . _ @ -)")
        token = _VARIABLE.sub(functools.partial(_variable, at=at), entry.token)
        if len(token) < 8:
            raise ConfigError(f"identities file {at}: the token of {name} is shorter than 8 characters")
        if token in found:
            raise ConfigError(f"identities file {at}: {name} has the token of {found[token].name}")
        found[token] = Identity(name=name, roles=frozenset(entry.roles))
    return found


def _variable(match: re.Match[str], *, at: str) -> str:
    name = match.group(1)
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"identities file {at}: ${{{name}}} is not set in the environment")
    return value


def require(identity: Identity, role: str) -> Identity:
    """The identity, if it has ``role``; HTTP 403 otherwise."""
    if not identity.can(role):
        raise HTTPException(403, f"{identity.name} may not {role} (roles: {', '.join(sorted(identity.roles))}); "
                                 "ask for the role in the identities file")
    return identity


def current_identity(request: Request) -> Identity:
    """The identity the request's token resolved to (set by the API's router dependency)."""
    return getattr(request.state, "identity", ANONYMOUS)  # type: ignore[no-any-return]
