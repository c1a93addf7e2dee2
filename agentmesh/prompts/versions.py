"""Versioned prompts in the agentmesh database: history, the active version of each role, promotion, rollback.

    from agentmesh.evolution import versions
    versions.ensure_imported(engine, "optimizer")          # prompts/optimizer.md becomes version 1
    versions.promote(engine, "optimizer", 3, actor="alice", reason="beats v1 on support (p=0.008)")
    versions.rollback(engine, "optimizer", actor="alice")   # back to the version before, instantly

The files in ``prompts/`` stay the source of a fresh install: with no rows, or while the active version is the
file's own (source ``file``), a run reads the file itself, so editing a prompt file works as it always did. Only
a promoted version that is not a file shadows the file; ``agentmesh prompts list`` says when the file has
changed since.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from agentmesh.core.exceptions import NotFoundError, UserError
from agentmesh.persistence.database import utcnow
from agentmesh.persistence.tables import prompt_active, prompt_events, prompt_versions
from agentmesh.prompts.templates import PromptTemplate, load_template

__all__ = [
    "STATUSES",
    "load_prompt",
    "active_template",
    "active_version",
    "add_version",
    "current_template",
    "diff",
    "ensure_imported",
    "get_version",
    "history",
    "list_versions",
    "promote",
    "record_event",
    "rollback",
    "set_status",
    "with_version",
]

STATUSES = ("file", "manual", "candidate", "rejected", "pending_approval", "promoted")
"""file: imported from prompts/; manual: added by hand; candidate: proposed, being evaluated; rejected: the
evidence did not support it; pending_approval: the evidence supports it and a person must approve it;
promoted: it was (at some point) made the active version."""


def _file_text(role: str, folder: Path | None) -> tuple[str, PromptTemplate]:
    template = load_template(role, folder=folder)
    assert template.path is not None
    return template.path.read_text(encoding="utf-8"), template


def with_version(text: str, version: int) -> str:
    """The prompt text with its front matter's ``version`` set (so a run records the database version)."""
    head, sep, body = text.partition("\n---")
    if re.search(r"(?m)^version:", head):
        head = re.sub(r"(?m)^version:.*$", f"version: {version}", head, count=1)
    else:
        head = head.rstrip("\n") + f"\nversion: {version}"
    return head + sep + body


def ensure_imported(engine: Engine, role: str, *, folder: Path | None = None) -> int:
    """Record the role's prompt file as a version if it is not one yet; returns the active version.

    The first import is version 1 and becomes active. A file edited later is recorded as a new version, and
    made active only if the active version was a file too (a promoted version is not silently replaced).
    """
    text, template = _file_text(role, folder)
    now = utcnow()
    with engine.begin() as conn:
        known = conn.execute(select(prompt_versions.c.version, prompt_versions.c.sha)
                             .where(prompt_versions.c.role == role)).all()
        active = conn.execute(select(prompt_active.c.version).where(prompt_active.c.role == role)).scalar()
        if any(sha == template.sha for _, sha in known):
            return active or 1
        version = max((v for v, _ in known), default=0) + 1
        conn.execute(insert(prompt_versions).values(
            role=role, version=version, text=text, sha=template.sha, parent=active, source="file", status="file",
            rationale=f"imported from {template.path}", created=now))
        conn.execute(insert(prompt_events).values(
            role=role, version=version, previous=active, action="import", actor="file", created=now,
            reason=f"{template.path} (front matter version {template.version})"))
        active_source = None
        if active is not None:
            active_source = conn.execute(select(prompt_versions.c.source).where(
                prompt_versions.c.role == role, prompt_versions.c.version == active)).scalar()
        if active is None:
            conn.execute(insert(prompt_active).values(role=role, version=version, updated=now))
            return version
        if active_source == "file":
            conn.execute(update(prompt_active).where(prompt_active.c.role == role).values(version=version, updated=now))
            return version
        return active


def load_prompt(role: str, *, folder: Path | None = None, engine: Engine | None = None) -> PromptTemplate:
    """The prompt a role runs with: the version promoted in the database of ``engine``, else ``folder/<role>.md``
    if present, else the bundled file."""
    if engine is not None:
        promoted = active_template(engine, role)
        if promoted is not None:
            return promoted
    return load_template(role, folder=folder)


def active_version(engine: Engine, role: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(prompt_active.c.version).where(prompt_active.c.role == role)).scalar()


def active_template(engine: Engine, role: str) -> PromptTemplate | None:
    """The active version of a role when it is not a file's (None: read the file). What runs consult."""
    with engine.connect() as conn:
        row = conn.execute(
            select(prompt_versions.c.version, prompt_versions.c.text, prompt_versions.c.source)
            .join(prompt_active, (prompt_active.c.role == prompt_versions.c.role)
                  & (prompt_active.c.version == prompt_versions.c.version))
            .where(prompt_active.c.role == role)
        ).first()
    if row is None or row.source == "file":
        return None
    return _parsed(role, row.version, row.text)


@lru_cache(maxsize=64)
def _parsed(role: str, version: int, text: str) -> PromptTemplate:
    template = PromptTemplate.from_text(text, path=None)
    template.version = str(version)
    return template


def current_template(engine: Engine, role: str, *, folder: Path | None = None) -> tuple[int, PromptTemplate, str]:
    """(version, template, full text) a run of ``role`` would use now, importing the file first if needed."""
    version = ensure_imported(engine, role, folder=folder)
    found = active_template(engine, role)
    if found is not None:
        return version, found, get_version(engine, role, version)["text"]
    text, template = _file_text(role, folder)
    template.version = str(version)
    return version, template, text


def add_version(engine: Engine, role: str, text: str, *, parent: int | None, source: str, rationale: str,
                status: str = "candidate", round_id: str | None = None, actor: str = "evolution") -> int:
    """Record a new version (a candidate by default); returns its number. The text is validated first."""
    template = PromptTemplate.from_text(text)
    if template.role != role:
        raise UserError(f"the prompt's front matter says role {template.role!r}, not {role!r}")
    now = utcnow()
    with engine.begin() as conn:
        version = (conn.execute(select(func.max(prompt_versions.c.version)).where(prompt_versions.c.role == role))
                   .scalar() or 0) + 1
        conn.execute(insert(prompt_versions).values(
            role=role, version=version, text=with_version(text, version), sha=template.sha, parent=parent,
            source=source, status=status, rationale=rationale, round_id=round_id, created=now))
        conn.execute(insert(prompt_events).values(
            role=role, version=version, previous=parent, action="propose", actor=actor, reason=rationale,
            round_id=round_id, created=now))
    return version


def get_version(engine: Engine, role: str, version: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(prompt_versions).where(prompt_versions.c.role == role,
                                                          prompt_versions.c.version == version)).mappings().first()
    if row is None:
        raise NotFoundError(f"role {role!r} has no prompt version {version}; `agentmesh prompts list {role}`")
    return dict(row)


def list_versions(engine: Engine, role: str | None = None) -> list[dict[str, Any]]:
    """Every version (of one role, or all), oldest first, with ``active`` marking the one in use."""
    query = select(prompt_versions).order_by(prompt_versions.c.role, prompt_versions.c.version)
    if role:
        query = query.where(prompt_versions.c.role == role)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        active = dict(conn.execute(select(prompt_active.c.role, prompt_active.c.version)).all())
    for r in rows:
        r["active"] = active.get(r["role"]) == r["version"]
    return rows


def history(engine: Engine, role: str | None = None) -> list[dict[str, Any]]:
    query = select(prompt_events).order_by(prompt_events.c.id)
    if role:
        query = query.where(prompt_events.c.role == role)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def record_event(engine: Engine, role: str, version: int, *, action: str, actor: str, reason: str | None = None,
                 evidence: Any = None, previous: int | None = None, round_id: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(insert(prompt_events).values(
            role=role, version=version, previous=previous, action=action, actor=actor, reason=reason,
            evidence=evidence, round_id=round_id, created=utcnow()))


def set_status(engine: Engine, role: str, version: int, status: str, *, actor: str, reason: str,
               evidence: Any = None, round_id: str | None = None) -> None:
    """Change a version's status (rejected, pending_approval…) and record who decided and why."""
    assert status in STATUSES, status
    get_version(engine, role, version)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(prompt_versions).where(prompt_versions.c.role == role, prompt_versions.c.version == version)
                     .values(status=status))
        conn.execute(insert(prompt_events).values(
            role=role, version=version, action="reject" if status == "rejected" else status, actor=actor,
            reason=reason, evidence=evidence, round_id=round_id, created=now))


def promote(engine: Engine, role: str, version: int, *, actor: str, reason: str, evidence: Any = None,
            round_id: str | None = None) -> int | None:
    """Make ``version`` the active one; returns the version it replaced. A pending promotion becomes approved."""
    row = get_version(engine, role, version)
    now = utcnow()
    with engine.begin() as conn:
        previous = conn.execute(select(prompt_active.c.version).where(prompt_active.c.role == role)).scalar()
        if previous == version:
            raise UserError(f"version {version} of {role} is already active")
        if evidence is None and row["status"] == "pending_approval":
            # The approval carries the evidence the evolution round recorded when it asked for it.
            evidence = conn.execute(select(prompt_events.c.evidence).where(
                prompt_events.c.role == role, prompt_events.c.version == version,
                prompt_events.c.action == "pending_approval").order_by(prompt_events.c.id.desc())).scalar()
        action = "approve" if row["status"] == "pending_approval" else "promote"
        if previous is None:
            conn.execute(insert(prompt_active).values(role=role, version=version, updated=now))
        else:
            conn.execute(update(prompt_active).where(prompt_active.c.role == role).values(version=version, updated=now))
        if row["source"] != "file":
            conn.execute(update(prompt_versions).where(prompt_versions.c.role == role,
                                                       prompt_versions.c.version == version).values(status="promoted"))
        conn.execute(insert(prompt_events).values(
            role=role, version=version, previous=previous, action=action, actor=actor, reason=reason,
            evidence=evidence, round_id=round_id or row["round_id"], created=now))
    return previous


def rollback(engine: Engine, role: str, version: int | None = None, *, actor: str,
             reason: str | None = None) -> tuple[int, int]:
    """Make an earlier version active again — by default the one the last promotion replaced. One UPDATE:
    the next agent step of any run reads it. Returns (from, to)."""
    with engine.connect() as conn:
        current = conn.execute(select(prompt_active.c.version).where(prompt_active.c.role == role)).scalar()
        if current is None:
            raise UserError(f"{role} has no prompt versions yet; nothing to roll back")
        if version is None:
            version = conn.execute(select(prompt_events.c.previous).where(
                prompt_events.c.role == role, prompt_events.c.version == current,
                prompt_events.c.action.in_(("promote", "approve", "import"))).order_by(prompt_events.c.id.desc())
            ).scalar()
            if version is None:
                raise UserError(f"version {current} of {role} replaced no earlier version; name one to roll back to")
    get_version(engine, role, version)
    if version == current:
        raise UserError(f"version {version} of {role} is already active")
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(prompt_active).where(prompt_active.c.role == role).values(version=version, updated=now))
        conn.execute(insert(prompt_events).values(
            role=role, version=version, previous=current, action="rollback", actor=actor,
            reason=reason or f"rolled back from version {current}", created=now))
    return current, version


def diff(engine: Engine, role: str, a: int, b: int) -> str:
    """A unified diff of two versions' texts."""
    left, right = get_version(engine, role, a)["text"], get_version(engine, role, b)["text"]
    return "".join(difflib.unified_diff(left.splitlines(keepends=True), right.splitlines(keepends=True),
                                        fromfile=f"{role} v{a}", tofile=f"{role} v{b}"))
