"""The policy: what the agents may do, in a file users edit.

The bundled ``default_policy.toml`` ships with the package; copy it to ``$AGENTMESH_HOME/policy.toml``
(``agentmesh world init`` does) and edit it there. The gateway's own rules live at the top level — which roles
may call which tools, which calls wait for a person and for how long, how many calls of a tool may run at once.
A plug-in's limits live in the plug-in's own table (the operations world's in ``[world]``: replica ranges, the
cost ceiling, refund caps, protected datasets), validated by the plug-in's model and enforced by the plug-in.

    >>> policy = Policy.load(DEFAULT_POLICY_FILE)
    >>> policy.approval_default
    'reject'
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentmesh.core.bundled import DEFAULT_POLICY_FILE
from agentmesh.core.exceptions import ConfigError
from agentmesh.core.toml_lines import close_match, syntax_error, where

if TYPE_CHECKING:
    from agentmesh.tools import Tool

__all__ = ["DEFAULT_POLICY_FILE", "Policy", "ScopeRules"]

S = TypeVar("S", bound=BaseModel)

Outside = Literal["refuse", "approve", "allow"]


class ScopeRules(BaseModel):
    """The ``[scope]`` table: what happens to a write or destructive call on an entity outside the goal's scope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outside: Outside = "approve"
    """refuse: refused and audited; approve: it waits for a person (``--approvals auto`` approves none); allow."""
    tools: dict[str, Outside] = Field(default_factory=dict)
    """Tool name -> its own ``outside`` rule (``scale_service = "refuse"``)."""
    targets: dict[str, str] = Field(default_factory=dict)
    """Tool name -> the argument naming its target, for tools that declare none in code (an MCP server's)."""

    def rule(self, tool: str) -> Outside:
        return self.tools.get(tool, self.outside)


class Policy(BaseModel):
    """Roles, approvals and concurrency — the gateway's rules — plus each plug-in's validated table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approval_required: list[str] = Field(default_factory=list)
    """Tool names that pause for a person before running (in addition to tools that ask for it themselves)."""
    roles: dict[str, list[str]] = Field(default_factory=dict)
    """Role -> tool names it may call; a tool absent from every list falls back to the tool's own `roles`."""
    concurrency: dict[str, int] = Field(default_factory=dict)
    """Tool name -> the most calls of it running at once across every goal, process and machine (enforced
    with a Prefect global concurrency limit named `agentmesh-tool-<name>`)."""
    risk: dict[str, Literal["read", "write", "destructive"]] = Field(default_factory=dict)
    """Tool name -> its risk class, for tools whose risk is not in their code: an MCP server's tools, whose
    annotations are only hints (readOnlyHint -> read, destructiveHint -> destructive, otherwise write)."""
    scope: ScopeRules = Field(default_factory=ScopeRules)
    """The scope guard (``agentmesh.gateway.scope``): writes on entities the goal does not refer to."""
    four_eyes: list[str] = Field(default_factory=list)
    """Risk classes (``destructive``) or tool names whose approval must come from someone other than the person
    who started the run (``--approvals auto`` approves none of them)."""
    approval_timeout_s: float | None = Field(default=None, gt=0)
    """Seconds an approval may wait; None waits forever."""
    approval_default: Literal["reject", "approve"] = "reject"
    """What happens to a pending approval when its deadline passes."""
    sections: dict[str, BaseModel] = Field(default_factory=dict, exclude=True)
    """Plug-ins' tables by name (e.g. ``world``), each validated by the model the plug-in registered."""
    source: str = Field(default="", exclude=True)
    """The file the policy was loaded from."""

    @classmethod
    def load(cls, path: Path, *, sections: Mapping[str, type[BaseModel]] | None = None) -> Policy:
        """Read a policy file (TOML); an unreadable file or a bad value is a ConfigError naming the file.

        ``sections`` are the plug-ins' tables (name -> model); a table no plug-in claims is an error, as is any
        key the gateway does not know.
        """
        path = Path(path)
        sections = dict(sections or {})
        try:
            text = path.read_text(encoding="utf-8")
            data: dict[str, Any] = tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"policy file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"policy file {path}: cannot read it ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(syntax_error("policy file", path, exc, text)) from None
        for key in data:  # a plug-in's limit written at the top level (as before plug-ins had tables)
            owner = next((name for name, model in sections.items() if key in model.model_fields), None)
            if owner is not None and key not in cls.model_fields:
                raise ConfigError(f"policy file {where(path, text, (key,))}: `{key}` belongs in the [{owner}] table")
        validated: dict[str, BaseModel] = {}
        for name, model in sections.items():
            try:
                validated[name] = model.model_validate(data.pop(name, {}))
            except ValidationError as exc:
                raise ConfigError(_problem(path, text, exc, model=model, prefix=(name,))) from None
        try:
            return cls.model_validate({**data, "sections": validated, "source": str(path)})
        except ValidationError as exc:
            raise ConfigError(_problem(path, text, exc, model=cls, known=[*(k for k in cls.model_fields if k not in
                                                                 ("sections", "source")), *sections])) from None

    def check_names(self, tools: Mapping[str, Tool], roles: Iterable[str]) -> None:
        """Every tool and role the policy names exists: ConfigError naming the file, the line and the closest valid
        name otherwise. A misspelt name would otherwise weaken the policy in silence (an approval never asked for,
        a limit never applied)."""
        roles = set(roles)
        risks = ("read", "write", "destructive")
        problems: list[tuple[tuple[str, ...], str, str, Iterable[str]]] = []  # (path, name, what, valid names)
        problems += [(("approval_required",), n, "tool", tools) for n in self.approval_required if n not in tools]
        for role, names in self.roles.items():
            if role not in roles:
                problems.append((("roles", role), role, "role", roles))
            problems += [(("roles", role), n, "tool", tools) for n in names if n not in tools]
        tables: list[tuple[tuple[str, ...], Iterable[str]]] = [
            (("concurrency",), self.concurrency), (("risk",), self.risk), (("scope", "tools"), self.scope.tools),
            (("scope", "targets"), self.scope.targets)]
        for table, keys in tables:
            problems += [((*table, n), n, "tool", tools) for n in keys if n not in tools]
        problems += [(("four_eyes",), n, "tool or risk", [*tools, *risks])
                     for n in self.four_eyes if n not in tools and n not in risks]
        for tool, argument in self.scope.targets.items():
            if tool in tools and argument not in tools[tool].args_model.model_fields:
                problems.append((("scope", "targets", tool), argument, f"argument of {tool}",
                                 tools[tool].args_model.model_fields))
        if not problems:
            return
        path, name, what, valid = problems[0]
        text = Path(self.source).read_text(encoding="utf-8") if self.source else ""
        shown = ".".join(path[:2])
        raise ConfigError(f"policy file {where(self.source, text, path, value=name)}: {shown}: "
                          f"unknown {what} {name!r}{close_match(name, valid)}")

    @classmethod
    def default(cls, *, sections: Mapping[str, type[BaseModel]] | None = None) -> Policy:
        """The bundled default policy."""
        return cls.load(DEFAULT_POLICY_FILE, sections=sections)

    def section(self, name: str, model: type[S]) -> S:
        """A plug-in's table, validated; its model's defaults when the file has no such table."""
        found = self.sections.get(name)
        if isinstance(found, model):
            return found
        return model()

    def allowed_roles(self, tool: Tool) -> tuple[str, ...]:
        """The roles that may call a tool: those whose list names it, else the tool's own defaults."""
        named = tuple(sorted(role for role, names in self.roles.items() if tool.name in names))
        return named if named or self._listed(tool.name) else tuple(tool.roles)

    def _listed(self, name: str) -> bool:
        return any(name in names for names in self.roles.values())

    def needs_approval(self, tool: Tool) -> bool:
        return tool.requires_approval or tool.name in self.approval_required

    def four_eyes_for(self, tool: str, risk: str | None) -> bool:
        """True when a call of ``tool`` (of class ``risk``) needs a second person's approval."""
        return tool in self.four_eyes or (risk is not None and risk in self.four_eyes)

    def target_of(self, tool: Tool) -> tuple[str, str] | None:
        """The argument naming a tool's target and the target's kind, or None when it names none."""
        argument = self.scope.targets.get(tool.name)
        if argument is not None:
            return argument, argument
        return (tool.target, tool.kind or tool.target) if tool.target else None

    def summary(self) -> dict[str, Any]:
        """The policy as plain data, for ``agentmesh policy show --json``."""
        tables = {name: section.model_dump(mode="json") for name, section in self.sections.items()}
        return {"source": self.source, **self.model_dump(mode="json"), **tables}


def _fields_at(model: Any, loc: Sequence[str]) -> list[str]:
    """The field names of the model found by following ``loc`` from ``model`` (through dicts of models)."""
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                return []
            model = field.annotation
        elif get_origin(model) is dict:
            model = get_args(model)[1]
        else:
            return []
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _problem(path: Path, text: str, exc: ValidationError, *, model: Any, prefix: tuple[str, ...] = (),
             known: Iterable[str] = ()) -> str:
    """One line for the first validation error: ``policy file FILE:LINE: where: what`` (an unknown key with the
    closest valid one)."""
    err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a misspelt key explains the rest
    loc = (*prefix, *(str(p) for p in err["loc"]))
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        names = list(known) if len(loc) == 1 else _fields_at(model, loc[len(prefix):-1])
        message = f"unknown key{close_match(loc[-1], names)}"
    shown = ".".join(loc) or "(top level)"
    return f"policy file {where(path, text, loc)}: {shown}: {message}"
