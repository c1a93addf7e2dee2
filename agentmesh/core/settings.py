"""Settings: ``AGENTMESH_*`` variables, an optional ``agentmesh.toml``, and the OpenAI SDK's own variables.

Precedence, highest first: explicit arguments, environment, ``agentmesh.toml`` (in the working folder, or
the file named by ``AGENTMESH_CONFIG``), defaults.

    >>> settings = Settings(model="offline")
    >>> settings.database_url.startswith("sqlite")
    True
"""

from __future__ import annotations

import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin

from pydantic import AliasChoices, BaseModel, Field, SecretStr, TypeAdapter, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from agentmesh.core.bundled import DEFAULT_POLICY_FILE
from agentmesh.core.exceptions import ConfigError
from agentmesh.core.mcp_config import McpSettings
from agentmesh.core.storage import check_storage_url
from agentmesh.core.toml_lines import close_match, syntax_error, where

__all__ = ["ModelPrice", "Settings", "get_settings"]

OFFLINE = "offline"

DEFAULT_ONLINE_MODEL = "gpt-4o-mini"


class ModelPrice(BaseModel):
    """Price of one model, in US dollars per million tokens."""

    input_per_mtok: float
    """Dollars per million input (prompt) tokens."""
    output_per_mtok: float
    """Dollars per million output (completion) tokens."""


# A small default price table; `[prices]` in agentmesh.toml adds to or overrides it. Unknown models: tokens only.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
    "gpt-4o": {"input_per_mtok": 2.50, "output_per_mtok": 10.00},
    "gpt-4.1": {"input_per_mtok": 2.00, "output_per_mtok": 8.00},
    "gpt-4.1-mini": {"input_per_mtok": 0.40, "output_per_mtok": 1.60},
    "offline": {"input_per_mtok": 0.0, "output_per_mtok": 0.0},
}


class Settings(BaseSettings):
    """Every knob of agentmesh, typed; ``agentmesh config`` prints the effective values with secrets masked."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTMESH_",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    home: Path = Path(".agentmesh")
    """Where state lives: the SQLite database, checkpoints, dataset versions, Prefect's home."""
    database_url: str = ""
    """SQLAlchemy URL of the agentmesh database; empty means SQLite under `home`."""
    checkpoint_url: str = ""
    """Where LangGraph checkpoints go; empty means alongside the agentmesh database."""
    storage_url: str = ""
    """Files every machine must see (the sample world's dataset versions): a folder (relative: under `home`), or
    `s3://bucket/prefix` (`pip install 'agentmesh[s3]'`) or another fsspec URL; empty means `home`."""

    model: str = ""
    """`offline`, or an OpenAI-compatible model name; empty picks offline when no key is set."""
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "AGENTMESH_OPENAI_API_KEY", "openai_api_key")
    )
    """The key, read as the OpenAI SDK reads it."""
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "AGENTMESH_OPENAI_BASE_URL", "openai_base_url"),
    )
    """An OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, LiteLLM, Azure…); empty means OpenAI."""
    model_timeout_s: float = Field(default=60.0, gt=0)
    """Seconds before one model HTTP request is abandoned (and retried by the transport layer)."""
    model_retries: int = Field(default=3, ge=0, le=10)
    """Transport retries for one model request: 429 (honouring Retry-After), 5xx, timeouts, cut connections."""
    model_temperature: float | None = None
    """Sampling temperature passed to the model; None leaves the endpoint's default."""
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    """Extra or overriding prices per model name (see DEFAULT_PRICES)."""

    prefect: Literal["local", "embedded"] = "local"
    """Without PREFECT_API_URL: `local` starts (once) and reuses a Prefect server on 127.0.0.1 in the
    background; `embedded` uses Prefect's ephemeral server inside each process (slow to start, no schedules)."""
    prefect_api_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PREFECT_API_URL", "AGENTMESH_PREFECT_API_URL", "prefect_api_url")
    )
    """A Prefect server to record runs in (read as Prefect reads it); empty: see `prefect`."""
    prefect_home: Path | None = Field(
        default=None, validation_alias=AliasChoices("PREFECT_HOME", "AGENTMESH_PREFECT_HOME", "prefect_home")
    )
    """Prefect's home (its local server's state and database); empty means `home/prefect`."""
    prefect_idle_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    """The local Prefect server (`prefect = "local"`) exits after this many minutes without a request; the next
    run starts it again. `agentmesh prefect stop --all` stops every one you started."""
    otel: str | None = None
    """OpenTelemetry GenAI traces of every goal: an OTLP endpoint (``http://host:4318`` for HTTP/protobuf,
    ``grpc://host:4317`` for gRPC), or ``off``; empty: on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, with ``OTEL_EXPORTER_OTLP_PROTOCOL`` choosing the protocol."""
    otel_capture_content: bool = Field(default=False, validation_alias=AliasChoices(
        "AGENTMESH_OTEL_CAPTURE_CONTENT", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "otel_capture_content"))
    """Put contents on the spans (the goal, model replies, tool arguments and results); off by default, as the
    GenAI semantic conventions say. Usage, names, statuses and reasons are always there."""
    plugins: list[str] = Field(default_factory=lambda: ["operations"])
    """Plug-ins to enable: a bundled one's name (`operations`, the sample world) or `package.module[:attribute]`."""

    graph: str = "mesh"
    """The graph a goal runs on when none is named."""
    policy_file: Path | None = None
    """The policy users edit; default `home/policy.toml` when present, else the bundled default."""
    tools_paths: list[Path] = Field(default_factory=list)
    """Extra folders of user tools (each `*.py` file's decorated functions)."""
    graphs_paths: list[Path] = Field(default_factory=list)
    """Extra folders holding a `langgraph.json` of user graphs."""
    prompts_path: Path | None = None
    """A folder of prompt files overriding the bundled ones, role by role."""

    max_plan_rounds: int = Field(default=2, ge=1, le=10)
    """How many times the strategist may plan (the first plan plus replans)."""
    max_tool_rounds: int = Field(default=6, ge=1, le=50)
    """Model turns one agent step may take before it must answer."""
    max_output_retries: int = Field(default=2, ge=0, le=10)
    """Re-asks when a structured output fails validation, before the step fails."""
    max_model_calls: int = Field(default=60, ge=1)
    """Model calls per goal."""
    max_tokens: int = Field(default=400_000, ge=1)
    """Input plus output tokens per goal."""
    max_cost_usd: float = Field(default=2.0, ge=0)
    """Model spend per goal, in dollars (models without a price count as free)."""
    max_seconds: float = Field(default=900.0, gt=0)
    """Wall time per goal."""
    node_retries: int = Field(default=1, ge=0, le=5)
    """Prefect task retries for a node that fails for a reason other than the model transport or policy."""
    flow_retries: int = Field(default=0, ge=0, le=5)
    """Prefect retries of a goal's flow run; a retry resumes from the checkpoint and repeats no finished work."""
    run_lease_s: float = Field(default=30.0, ge=2, le=3600)
    """How long a run's owner holds it without renewing; the owner renews every third of it while the goal runs.
    `runs resume` and `approve` refuse a run whose lease is current (an owner on this host whose process is gone
    is seen at once); `--force` takes it over."""
    dead_worker_s: float = Field(default=90.0, ge=60, le=3600)
    """Seconds without a heartbeat (one every 30 s) after which agentmesh's automation on the Prefect server marks a
    deployed goal's flow run Crashed and puts it back on its work pool (`agentmesh prefect automations`)."""
    goal_restarts: int = Field(default=3, ge=0, le=20)
    """How many times a deployed goal whose worker died is started again on its pool before it is failed."""
    tool_timeout_s: float = Field(default=30.0, gt=0)
    """Seconds a tool may run before its call is failed and the model told so."""
    approvals: Literal["wait", "auto", "deny"] = "wait"
    """What a call that needs approval does: wait for a person, approve when policy allows, or reject."""
    dry_run: bool = False
    """Plan and validate every tool call but execute none."""
    remote_roles: list[str] = Field(default_factory=list)
    """Roles whose agent steps run on task workers (`agentmesh worker --role ROLE`), not in the goal's process."""
    step_timeout_s: float = Field(default=120.0, gt=0)
    """Seconds a remote role's step may wait for a task worker to take it (a free one, if all are busy); a step
    whose worker dies is sent again at once (twice at most). The goal fails, naming the role, when no worker takes
    the step in time, instead of waiting out `max_seconds`. A step a live worker is running may take its time."""
    identities_file: Path | None = None
    """The named identities of `agentmesh serve` (tokens and roles; see agentmesh.interfaces.identities)."""
    mcp: McpSettings = Field(default_factory=McpSettings)
    """MCP servers whose tools join the registry (`[mcp.servers.NAME]` tables; see agentmesh.core.mcp_config)."""

    @model_validator(mode="after")
    def _check(self) -> Settings:
        check_storage_url(self.storage_url)
        if self.model and self.model != OFFLINE and not self.openai_api_key:
            raise ConfigError(
                f"model {self.model!r} needs an API key: set OPENAI_API_KEY (any value for a local server), "
                "or use --model offline"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("AGENTMESH_CONFIG", "agentmesh.toml"))
        if "AGENTMESH_CONFIG" in os.environ and not config_file.is_file():
            raise ConfigError(f"AGENTMESH_CONFIG names {config_file}, which does not exist")
        return (init_settings, _Environment(settings_cls), _CheckedToml(settings_cls, config_file))

    # -- derived values ---------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The model actually used: offline unless a model is named or a key is configured."""
        if self.model:
            return self.model
        return DEFAULT_ONLINE_MODEL if self.openai_api_key else OFFLINE

    @property
    def offline(self) -> bool:
        return self.model_name == OFFLINE

    @cached_property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_prefect_home(self) -> Path:
        return (self.prefect_home or self.resolved_home / "prefect").expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_home / 'agentmesh.db'}"

    @property
    def resolved_policy_file(self) -> Path:
        if self.policy_file:
            if not self.policy_file.is_file():
                raise ConfigError(f"policy file {self.policy_file} does not exist")
            return self.policy_file
        mine = self.resolved_home / "policy.toml"
        return mine if mine.is_file() else DEFAULT_POLICY_FILE

    def price(self, model: str) -> ModelPrice | None:
        if model in self.prices:
            return self.prices[model]
        known = DEFAULT_PRICES.get(model)
        return ModelPrice(**known) if known else None

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets masked, database passwords hidden."""
        data = self.model_dump(mode="json")
        data["openai_api_key"] = "****" + self.openai_api_key.get_secret_value()[-4:] if self.openai_api_key else None
        for key in ("database_url", "checkpoint_url"):
            data[key] = mask_url(data[key])
        data["model_name"] = self.model_name
        data["resolved_database_url"] = mask_url(self.resolved_database_url)
        return data


class _Environment(EnvSettingsSource):
    """``AGENTMESH_*`` variables; a list setting also takes a plain value or a comma-separated list
    (``AGENTMESH_TOOLS_PATHS=examples/my_graph/tools``, ``AGENTMESH_PLUGINS=operations,mypkg.mod``) besides JSON;
    bad JSON or a wrong value is a one-line ConfigError naming the variable."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if isinstance(value, str) and get_origin(field.annotation) is list and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError as exc:
            raise ConfigError(f"{self.env_prefix}{field_name.upper()}: not valid JSON ({exc})") from None

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        fields = _fields_by_key(self.settings_cls)
        for key, value in data.items():
            field = fields.get(key) or fields.get(key.lower())
            problem = _problem(field, value) if field is not None else None
            if problem is not None:
                variable = key if key.isupper() else f"{self.env_prefix}{key.upper()}"
                loc, message = problem
                inner = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
                raise ConfigError(f"{variable}{inner}: {message}")
        return data


class _CheckedToml(TomlConfigSettingsSource):
    """``agentmesh.toml``, checked key by key: an unknown key or a wrong value names the file, its line and (for a
    misspelt key) the closest valid one — a setting that is silently ignored is a setting that silently fails."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        try:
            super().__init__(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(syntax_error("settings file", path, exc)) from None
        if self.toml_data:
            _check_settings_file(settings_cls, path, self.toml_data)


def _fields_by_key(settings_cls: type[BaseSettings]) -> dict[str, FieldInfo]:
    """Each setting by its name and by its lower-case aliases (``openai_api_key``)."""
    names: dict[str, FieldInfo] = {}
    for name, field in settings_cls.model_fields.items():
        names[name] = field
        alias = field.validation_alias
        for choice in alias.choices if isinstance(alias, AliasChoices) else ():
            if isinstance(choice, str) and choice.lower() == choice:
                names[choice] = field
    return names


def _problem(field: FieldInfo, value: Any) -> tuple[tuple[str, ...], str] | None:
    """Where in ``value`` (key path, the setting first) and what is wrong with it for ``field``; None if valid."""
    kind: Any = field.annotation
    if field.metadata:
        kind = Annotated[kind, *field.metadata]
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        return ("", *(str(p) for p in err["loc"])), message
    return None


def _check_settings_file(settings_cls: type[BaseSettings], path: Path, data: dict[str, Any]) -> None:
    text = path.read_text(encoding="utf-8")
    names = _fields_by_key(settings_cls)
    for key, value in data.items():
        found = names.get(key)
        if found is None:
            raise ConfigError(f"settings file {where(path, text, (key,))}: {key}: unknown setting"
                              f"{close_match(key, settings_cls.model_fields)}")
        problem = _problem(found, value)
        if problem is not None:
            loc = (key, *problem[0][1:])
            raise ConfigError(f"settings file {where(path, text, loc)}: {'.'.join(loc)}: {problem[1]}")


def mask_url(url: str) -> str:
    """Hide the password of a database URL: ``postgresql://u:****@h/db``."""
    from sqlalchemy.engine import make_url

    if not url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment and files, with explicit overrides (None values are ignored)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
