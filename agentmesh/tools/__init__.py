"""Tools: plain typed functions with docstrings, made callable by agents with one decorator.

    from agentmesh import ToolContext, tool

    @tool(risk="write", roles=["optimizer"])
    def scale_service(service: str, replicas: int, ctx: ToolContext) -> dict:
        '''Set the replica count of a service.

        Args:
            service: Name of the service, e.g. "checkout-api".
            replicas: The new replica count.
        '''
        return ctx.resource(World).scale_service(service, replicas, key=ctx.idempotency_key)

The argument schema comes from the signature (``Annotated[..., Field(...)]`` works too) and the
docstring's ``Args:`` section; a parameter annotated ``ToolContext`` is injected and hidden from the model.
Every call goes through the tool gateway (``agentmesh.gateway``), never straight to the function.
Built-in tools live in the bundled ``tools/`` folder and load through the same ``ToolRegistry`` as a
user's own folders.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_type_hints, overload

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, create_model

from agentmesh.core.bundled import bundled
from agentmesh.core.exceptions import ConfigError, NotFoundError

if TYPE_CHECKING:
    from agentmesh.core.resources import Resources
    from agentmesh.core.settings import Settings

__all__ = ["Risk", "Tool", "ToolContext", "ToolRegistry", "tool"]

T = TypeVar("T")

Risk = Literal["read", "write", "destructive"]

# Who may call a tool when neither the decorator nor the policy says: reading is for the working roles,
# changing the world is the optimizer's. The strategist plans and decides; it calls no tools by default.
DEFAULT_ROLES: dict[str, tuple[str, ...]] = {
    "read": ("analyst", "optimizer", "innovator"),
    "write": ("optimizer",),
    "destructive": ("optimizer",),
}


@dataclass(kw_only=True)
class ToolContext:
    """What a tool may know about the call it serves; declare a parameter of this type to receive it."""

    run_id: str
    """The goal's run id (also the LangGraph thread id)."""
    tool_call_id: str
    """The model's id for this call; with the run id it is the call's idempotency key."""
    agent: str
    """The role of the agent that made the call."""
    settings: Settings
    """The effective settings."""
    resources: Resources
    """The run's resources (see ``resource``)."""

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}:{self.tool_call_id}"

    def resource(self, kind: type[T]) -> T:
        """The run's instance of a resource type a plug-in provides, e.g. ``ctx.resource(World)``."""
        return self.resources.get(kind)


@dataclass(kw_only=True)
class Tool:
    """A function an agent may call, with its schema and its risk."""

    name: str
    """The name models see."""
    description: str
    """What the tool does, for the model (the docstring's summary and body)."""
    function: Callable[..., Any]
    """The decorated function."""
    args_model: type[BaseModel]
    """Validates the model's arguments (the function's parameters less the context)."""
    risk: Risk = "read"
    """read: changes nothing; write: changes the world; destructive: hard to undo (needs approval by default)."""
    roles: tuple[str, ...] = ()
    """Roles allowed by default; the policy's `[roles]` table overrides."""
    idempotent: bool = False
    """Safe to repeat with the same arguments; non-idempotent calls are never re-executed."""
    requires_approval: bool = False
    """Pause for a person before executing (the policy's `approval_required` adds more)."""
    timeout_s: float | None = None
    """Overrides the settings' `tool_timeout_s`."""
    context_param: str | None = None
    """Name of the ToolContext parameter, if the function takes one."""
    source: str = ""
    """Where the tool was defined (file path), for `agentmesh tools`."""
    server: str | None = None
    """The MCP server the tool forwards to (``agentmesh.tools.mcp``); None for a Python tool."""
    target: str | None = None
    """The argument naming the entity a call acts on (``"service"``): the gateway's scope guard checks a write's
    target against the goal's scope (``agentmesh.gateway.scope``). None: the tool names no target."""
    target_kind: str | None = None
    """The kind of entity the target is (``"service"``, ``"ticket"``), as plug-ins list them; default the
    argument's name."""

    @property
    def kind(self) -> str | None:
        """The kind of entity the target argument names, or None when the tool declares no target."""
        return (self.target_kind or self.target) if self.target else None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    def parameters_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments, as models and `agentmesh tools --json` see it."""
        return json.loads(_parameters_schema(self.args_model))

    def openai_schema(self) -> dict[str, Any]:
        """The OpenAI function-calling definition; `BaseChatModel.bind_tools` accepts it as is."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters_schema()},
        }

    def as_langchain_tool(self) -> Any:
        """The tool as a LangChain ``StructuredTool`` (for use outside agentmesh; agentmesh calls go through the gateway)."""
        from langchain_core.tools import StructuredTool

        if self.context_param:
            raise ConfigError(f"tool {self.name!r} takes a ToolContext and can only run through the agentmesh gateway")
        kwargs: dict[str, Any] = {"coroutine": self.function} if self.is_async else {"func": self.function}
        return StructuredTool.from_function(
            name=self.name, description=self.description, args_schema=self.args_model, **kwargs
        )

    def describe(self, roles: Iterable[str] | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "risk": self.risk,
            "roles": sorted(roles if roles is not None else self.roles),
            "requires_approval": self.requires_approval,
            "idempotent": self.idempotent,
            "parameters": self.parameters_schema(),
            "server": self.server,
            "target": self.target,
            "target_kind": self.kind,
        }


@overload
def tool(function: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    risk: Risk = "read",
    roles: Iterable[str] | None = None,
    idempotent: bool | None = None,
    requires_approval: bool | None = None,
    timeout_s: float | None = None,
    target: str | None = None,
    target_kind: str | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    risk: Risk = "read",
    roles: Iterable[str] | None = None,
    idempotent: bool | None = None,
    requires_approval: bool | None = None,
    timeout_s: float | None = None,
    target: str | None = None,
    target_kind: str | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a typed function a tool; usable bare (``@tool``) or with options (``@tool(risk="write")``).

    ``target`` names the argument that says which entity a call acts on (``target="service"``), and
    ``target_kind`` that entity's kind when it is not the argument's name (``target="ticket_id",
    target_kind="ticket"``): a write or destructive call is then checked against the goal's scope.
    """

    def build(fn: Callable[..., Any]) -> Tool:
        args_model, context_param = _arguments_model(fn)
        doc = docstring_parser.parse(inspect.getdoc(fn) or "")
        description = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
        if not description:
            raise ConfigError(f"tool {fn.__name__!r} needs a docstring: models choose tools by their description")
        if target is not None and target not in args_model.model_fields:
            raise ConfigError(f"tool {fn.__name__!r}: target={target!r} is not one of its arguments "
                              f"({', '.join(args_model.model_fields) or 'none'})")
        return Tool(
            name=name or fn.__name__,
            description=description,
            function=fn,
            args_model=args_model,
            risk=risk,
            roles=tuple(roles) if roles is not None else DEFAULT_ROLES[risk],
            idempotent=risk == "read" if idempotent is None else idempotent,
            requires_approval=risk == "destructive" if requires_approval is None else requires_approval,
            timeout_s=timeout_s,
            context_param=context_param,
            target=target,
            target_kind=target_kind if target is not None else None,
            source=inspect.getsourcefile(fn) or "",
        )

    return build(function) if function is not None else build


def _arguments_model(fn: Callable[..., Any]) -> tuple[type[BaseModel], str | None]:
    hints = get_type_hints(fn, include_extras=True)
    docs = {p.arg_name: p.description for p in docstring_parser.parse(inspect.getdoc(fn) or "").params}
    fields: dict[str, Any] = {}
    context_param = None
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name, Any)
        if annotation is ToolContext or getattr(annotation, "__name__", None) == "ToolContext":
            context_param = param.name
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {fn.__name__!r}: *args and **kwargs cannot be described to a model")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, Field(default, description=docs.get(param.name)))
    model = create_model(
        f"{fn.__name__}_args",
        __config__=ConfigDict(extra="forbid"),  # an argument the tool does not take is an error the model sees
        **fields,
    )
    return model, context_param


@dataclass(kw_only=True)
class ToolRegistry:
    """The tools an installation offers: the bundled folder first, then the user's folders."""

    tools: dict[str, Tool] = field(default_factory=dict)

    @classmethod
    def load(cls, paths: Iterable[Path] = (), *, builtins: bool = True, extra: Iterable[Tool] = ()) -> ToolRegistry:
        """The tools of the folders, then ``extra`` (built elsewhere, e.g. an MCP server's, whose names must be new)."""
        registry = cls()
        folders = ([bundled("tools")] if builtins else []) + [Path(p) for p in paths]
        for folder in folders:
            if not folder.is_dir():
                raise ConfigError(f"tools folder {folder} does not exist")
            for file in sorted(folder.glob("*.py")):
                if not file.name.startswith("_"):
                    for found in _tools_in(file):
                        registry.add(found)
        for more in extra:
            if more.name in registry:
                raise ConfigError(f"tool {more.name!r} of {more.source} has the name of {registry.get(more.name).source}; "
                                  "rename one of them")
            registry.add(more)
        return registry

    def add(self, new: Tool) -> None:
        # A user's tool of the same name replaces the built-in one: that is how a backend is swapped.
        self.tools[new.name] = new

    def get(self, name: str) -> Tool:
        try:
            return self.tools[name]
        except KeyError:
            raise NotFoundError(f"no tool {name!r}; `agentmesh tools` lists them") from None

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.tools.values())

    def names(self) -> list[str]:
        return sorted(self.tools)


def _tools_in(file: Path) -> list[Tool]:
    digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:10]
    module_name = f"agentmesh_tools_{digest}_{file.stem}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot import tools file {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise ConfigError(f"tools file {file} failed to import: {type(exc).__name__}: {exc}") from None
    return [value for value in vars(module).values() if isinstance(value, Tool)]


@functools.cache
def _parameters_schema(args_model: type[BaseModel]) -> str:
    # Every agent step offers its tools' schemas; pydantic rebuilds one in milliseconds, so build each once
    # (as JSON text: every caller gets its own copy to change).
    schema = args_model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return json.dumps(schema)
