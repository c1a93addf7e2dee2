"""Prompts are files: ``prompts/<role>.md`` with YAML front matter, rendered with strict undefined variables.

    ---
    role: analyst
    version: 1
    tools: auto            # or a list of tool names; auto = every tool the policy lets this role call
    description: Investigates with read-only tools.
    tool_rounds: 4         # optional: tool-calling turns per step (default: settings.max_tool_rounds)
    ---
    You are the **analyst** … {% include "_shared/tools.md" %}

A user's ``prompts_path`` folder overrides the bundled prompts file by file. A missing variable fails the
render loudly (``ConfigError``) instead of sending a model a half-empty prompt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentmesh.core.bundled import bundled
from agentmesh.core.exceptions import ConfigError, NotFoundError

__all__ = ["PromptTemplate", "list_roles", "load_template"]


class _FrontMatter(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    version: int | str = 1
    tools: list[str] | str = "auto"
    description: str = ""
    plan_rounds: int | None = Field(default=None, ge=1, le=10)
    tool_rounds: int | None = Field(default=None, ge=1, le=50)


@dataclass(kw_only=True)
class PromptTemplate:
    """One role's prompt: front matter plus a Jinja body."""

    role: str
    """The role the prompt is for."""
    version: str
    """The version named in the front matter (`sha` below tells edits apart)."""
    tools: list[str] | None
    """Tool names offered to the role; None means every tool the policy allows it."""
    description: str
    """One line about the role, for `agentmesh agents`."""
    body: str
    """The Jinja template of the system prompt."""
    plan_rounds: int | None = None
    """Plan rounds (first plan + replans) of a mesh this role is the strategist of; None: settings.max_plan_rounds."""
    tool_rounds: int | None = None
    """Tool-calling turns per step before the role must answer; None: settings.max_tool_rounds."""
    path: Path | None = None
    """The file it came from."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Other front-matter keys."""

    @property
    def settings(self) -> dict[str, Any]:
        """The tunable settings the front matter fixes (None: the installation's default)."""
        return {"tools": self.tools, "plan_rounds": self.plan_rounds, "tool_rounds": self.tool_rounds}

    @property
    def sha(self) -> str:
        """Of the body and the settings: a run's ``version@sha`` tells apart what the role was told and how it ran."""
        return hashlib.sha256((self.body + json.dumps(self.settings, sort_keys=True)).encode()).hexdigest()[:12]

    def render(self, **variables: Any) -> str:
        try:
            return _compiled(self._search_path(), self.body).render(role=self.role, **variables)
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"prompt {self.path or self.role}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise ConfigError(f"prompt {self.path or self.role}: {exc}") from None

    def _search_path(self) -> tuple[str, ...]:
        folders = [str(self.path.parent)] if self.path else []
        return (*folders, str(bundled("prompts")))

    @classmethod
    def from_text(cls, text: str, *, path: Path | None = None) -> PromptTemplate:
        where = path or "<prompt>"
        if not text.startswith("---"):
            raise ConfigError(f"prompt {where} has no front matter (a `---` block with role, version, tools)")
        try:
            _, head, body = text.split("---", 2)
            meta = _FrontMatter.model_validate(yaml.safe_load(head) or {})
        except ValidationError as exc:  # before ValueError, which it subclasses
            first = exc.errors()[0]
            raise ConfigError(f"prompt {where}: front matter {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        except ValueError:
            raise ConfigError(f"prompt {where}: front matter is not closed by `---`") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"prompt {where}: front matter is not YAML: {exc}".splitlines()[0]) from None
        tools = None if meta.tools == "auto" else list(meta.tools)
        return cls(
            role=meta.role,
            version=str(meta.version),
            tools=tools,
            description=meta.description,
            plan_rounds=meta.plan_rounds,
            tool_rounds=meta.tool_rounds,
            body=body.strip() + "\n",
            path=path,
            extra=meta.model_extra or {},
        )


@lru_cache(maxsize=8)
def _environment(search_path: tuple[str, ...]) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(search_path)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
    )


@lru_cache(maxsize=256)
def _compiled(search_path: tuple[str, ...], body: str) -> jinja2.Template:
    return _environment(search_path).from_string(body)


@lru_cache(maxsize=256)
def _parsed_file(path: Path, _mtime_ns: int, _size: int) -> PromptTemplate:
    return PromptTemplate.from_text(path.read_text(encoding="utf-8"), path=path)


def load_template(role: str, *, folder: Path | None = None) -> PromptTemplate:
    """The prompt file of a role: ``folder/<role>.md`` if present, else the bundled one (promoted versions are
    ``agentmesh.prompts.load_prompt``'s business)."""
    for base in (folder, bundled("prompts")):
        if base is not None and (base / f"{role}.md").is_file():
            path = base / f"{role}.md"
            stat = path.stat()  # parsed once per version of the file; a copy, so callers may change it
            return dataclasses.replace(_parsed_file(path, stat.st_mtime_ns, stat.st_size))
    raise NotFoundError(f"no prompt for role {role!r}: add prompts/{role}.md")


def list_roles(folder: Path | None = None) -> list[str]:
    roles = {p.stem for p in bundled("prompts").glob("*.md")}
    if folder and folder.is_dir():
        roles |= {p.stem for p in folder.glob("*.md")}
    return sorted(roles)
