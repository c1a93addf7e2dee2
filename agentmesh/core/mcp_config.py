"""The MCP servers agentmesh consumes: one ``[mcp.servers.NAME]`` table each in ``agentmesh.toml``.

    [mcp.servers.time]                      # stdio: agentmesh starts the server as a child process
    command = "python"
    args = ["-m", "mcp_server_time", "--local-timezone", "UTC"]

    [mcp.servers.tracker]                   # streamable HTTP: the server runs on its own
    url = "http://127.0.0.1:9000/mcp"
    headers = { Authorization = "Bearer ${TRACKER_TOKEN}" }

``${VAR}`` in ``args``, ``env``, ``cwd``, ``url`` and ``headers`` is read from the environment when agentmesh
connects, so secrets stay out of the file. Header and environment values are secrets: ``agentmesh config``
masks them. The server's tools are named ``NAME__TOOL`` (``agentmesh.tools.mcp``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from agentmesh.core.exceptions import ConfigError

__all__ = ["McpServerConfig", "McpSettings", "expand", "expand_path"]

SERVER_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_))*$")
"""A server name: letters, digits, ``-`` and single ``_`` (``__`` separates it from the tool name)."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class McpServerConfig(BaseModel):
    """One MCP server: ``command`` (stdio) or ``url`` (streamable HTTP), never both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = None
    """stdio: the program to start (``python``, ``uvx``, ``npx``…)."""
    args: list[str] = Field(default_factory=list)
    """stdio: its arguments."""
    env: dict[str, SecretStr] = Field(default_factory=dict)
    """stdio: extra environment variables (the server also gets PATH, HOME and the like, not the rest)."""
    cwd: str | None = None
    """stdio: the working folder (default: agentmesh's)."""
    url: str | None = None
    """Streamable HTTP: the server's endpoint, e.g. ``http://127.0.0.1:9000/mcp``."""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Streamable HTTP: headers sent with every request (``Authorization``…)."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Seconds one call may take; default: the settings' ``tool_timeout_s``."""
    startup_timeout_s: float = Field(default=30.0, gt=0)
    """Seconds to start the server (stdio) or reach it, and list its tools."""

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either `command` (a stdio server) or `url` (a streamable HTTP server)")
        if self.url and (self.args or self.env or self.cwd):
            raise ValueError("`args`, `env` and `cwd` are for stdio servers (`command`), not `url`")
        if self.command and self.headers:
            raise ValueError("`headers` are for streamable HTTP servers (`url`), not `command`")
        return self

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "streamable-http"

    def fingerprint(self) -> str:
        """What identifies a connection: a changed table means a new connection (secrets included, never shown)."""
        values = self.model_dump(mode="json")
        values["env"] = {k: v.get_secret_value() for k, v in self.env.items()}
        values["headers"] = {k: v.get_secret_value() for k, v in self.headers.items()}
        return repr(sorted(values.items()))

    def where(self) -> str:
        """The command line or URL, for messages (no secret appears in either)."""
        return self.url or " ".join([self.command or "", *self.args])


class McpSettings(BaseModel):
    """The ``[mcp]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: dict[str, McpServerConfig] = Field(default_factory=dict)
    """Server name -> how to reach it."""

    @field_validator("servers")
    @classmethod
    def _names(cls, servers: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in servers:
            if not SERVER_NAME.match(name):
                raise ValueError(f"MCP server name {name!r}: use letters, digits, '-' and single '_' "
                                 "(its tools are named NAME__TOOL)")
        return servers


def expand(text: str, *, server: str, environ: dict[str, str] | None = None) -> str:
    """``${VAR}`` replaced from the environment; a variable that is not set is a ConfigError naming it."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"MCP server {server!r} needs ${{{name}}}, which is not set in the environment")
        return env[name]

    return _VARIABLE.sub(value, text)


def expand_path(text: str | None, *, server: str) -> Path | None:
    return Path(expand(text, server=server)).expanduser() if text else None
