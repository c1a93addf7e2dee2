"""The tables of prompt versions, their history and evolution rounds (on ``agentmesh.store.metadata``)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Integer, String, Table, Text

from ..store import metadata

__all__ = ["evolution_rounds", "prompt_active", "prompt_events", "prompt_versions"]

# Every version of a role's prompt ever seen: the file it started from (source `file`), the candidates an
# evolution round proposed (source `evolution`) and hand-written ones. The full file text is kept (front
# matter included), so a version also fixes the role's settings: its tool subset, plan rounds and tool rounds.
prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("role", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("sha", String(16), nullable=False),  # of the body and the settings, as PromptTemplate.sha
    Column("parent", Integer),  # the version it was derived from
    Column("source", String(32), nullable=False),  # file, evolution, manual
    Column("status", String(32), nullable=False),  # see versions.STATUSES
    Column("rationale", Text),
    Column("round_id", String(64)),
    Column("created", DateTime(timezone=True), nullable=False),
)

# The version each role runs with. One row per role; rollback is one UPDATE of it.
prompt_active = Table(
    "prompt_active",
    metadata,
    Column("role", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
)

# Who or what changed a role's prompt, and on which evidence: imports, proposals, rejections, pending
# promotions, promotions, approvals and rollbacks.
prompt_events = Table(
    "prompt_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("role", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous", Integer),
    Column("action", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text),
    Column("evidence", JSON),
    Column("round_id", String(64)),
    Column("created", DateTime(timezone=True), nullable=False),
)

evolution_rounds = Table(
    "evolution_rounds",
    metadata,
    Column("round_id", String(64), primary_key=True),
    Column("role", String(64), nullable=False),
    Column("suite", Text, nullable=False),
    Column("decision", String(32), nullable=False),  # promoted, pending_approval, kept
    Column("report", JSON, nullable=False),
    Column("html_path", Text),
    Column("flow_run_id", String(64)),
    Column("created", DateTime(timezone=True), nullable=False),
)
