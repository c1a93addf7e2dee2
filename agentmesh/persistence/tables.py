"""Every table of the agentmesh database, on one ``metadata``: the leaf of the persistence layer.

Nothing here imports agentmesh. ``agentmesh.persistence.database.get_engine`` creates these tables; a plug-in
with state of its own (the sample operations world) keeps its tables on its own ``MetaData`` and creates them
when it is first used, so a run that never touches it leaves no trace of it.

    runs, steps, model_calls      a goal's run, its graph steps, the model journal      (persistence.runs)
    step_sends                    remote steps sent to task workers, and who holds them  (persistence.owner)
    tool_calls                    the audit: one row per attempted tool call             (persistence.audit)
    events                        a run's event stream                                   (persistence.events)
    feedback                      operator feedback and lessons                          (agentmesh.memory)
    prompt_versions, prompt_active, prompt_events, evolution_rounds                      (prompts.versions, evolution)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Column, DateTime, Float, Integer, MetaData, String, Table, Text

__all__ = [
    "evolution_rounds", "events", "feedback", "metadata", "model_calls", "prompt_active", "prompt_events",
    "prompt_versions", "runs", "step_sends", "steps", "timestamp", "tool_calls",
]

metadata = MetaData()


# DateTime(timezone=True) keeps PostgreSQL honest; SQLite stores the ISO text either way.
def timestamp(name: str, **kw: Any) -> Column:
    """A timezone-aware timestamp column."""
    return Column(name, DateTime(timezone=True), **kw)


runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("flow_run_id", String(64)),
    Column("goal", Text, nullable=False),
    Column("graph", String(128), nullable=False),
    Column("status", String(32), nullable=False),  # running, done, failed, waiting_approval, budget_exceeded, cancelled
    Column("model", String(128), nullable=False),
    Column("offline", Boolean, nullable=False),
    Column("deployment", String(128)),
    Column("prefect_api_url", String(512)),
    Column("error", Text),
    Column("plan", JSON),
    Column("decision", JSON),
    Column("usage", JSON),
    Column("timings", JSON),
    Column("prompt_versions", JSON),
    Column("scope", JSON),  # what the goal refers to, resolved once at the start (agentmesh.gateway.scope)
    Column("started_by", String(128)),  # the identity that submitted the goal (four eyes compares approvers to it)
    Column("trace_id", String(32)),  # the goal's OpenTelemetry trace (32 hex digits), when tracing was on
    # The process that owns the run, ``host:pid:token`` (a new token at each claim), and until when: only the owner
    # writes the run's status, steps and audit, each write checking it in its own transaction (persistence.runs).
    Column("owner", String(160)),
    timestamp("lease_until"),  # None: released (the run paused or ended)
    timestamp("created", nullable=False),
    timestamp("updated", nullable=False),
)


steps = Table(
    "steps",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("step_key", String(256), primary_key=True),  # LangGraph's checkpoint namespace of the node's task
    Column("node", String(128), nullable=False),
    Column("agent", String(64)),
    Column("prefect_task_run_id", String(64)),
    Column("span_id", String(16)),  # the step's OpenTelemetry span (16 hex digits), when tracing was on
    Column("status", String(32), nullable=False),  # running, done, failed, paused
    Column("seq", Integer, nullable=False),
    timestamp("started", nullable=False),
    timestamp("ended"),
    Column("worker", String(160)),  # host:pid of the process that ran it: the goal's, or a remote role's task worker
)


# One row per send of a remote role's step to the task workers (agentmesh.runtime.remote), while the goal waits
# for it: the worker that took it and its lease, renewed while it works, so the goal tells a slow worker from a
# dead one. A send no longer waited for is deleted: a worker that takes it late finds no row and does nothing.
step_sends = Table(
    "step_sends",
    metadata,
    Column("send_id", String(32), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("step_key", String(256), nullable=False),
    Column("worker", String(160)),  # host:pid of the worker that took it; None: not taken yet
    timestamp("lease_until"),
    timestamp("created", nullable=False),
)


# The model journal: what each model call of a step returned, so a retried or resumed step replays the
# recorded replies instead of asking the model again (and so repeats no tool call id).
model_calls = Table(
    "model_calls",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("step_key", String(256), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("agent", String(64)),
    Column("model", String(128)),
    Column("message", JSON, nullable=False),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    timestamp("created", nullable=False),
)


tool_calls = Table(
    "tool_calls",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("tool_call_id", String(128), primary_key=True),
    Column("step_key", String(256)),
    Column("node", String(128)),
    Column("agent", String(64)),
    Column("tool", String(128), nullable=False),
    Column("risk", String(16)),
    Column("args", JSON),
    Column("status", String(32), nullable=False),
    Column("reason", Text),
    Column("result", JSON),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("ended", DateTime(timezone=True)),
    Column("approval", String(16)),  # pending, approved, rejected (None: no approval needed)
    Column("approver", String(128)),
    Column("approval_reason", Text),
    Column("approved_at", DateTime(timezone=True)),
    Column("edited_args", JSON),  # the arguments the approver changed the call to (None: approved as asked)
    Column("scope", Text),  # why a write was outside the goal's scope, when it was (None: inside, or not checked)
)


events = Table(
    "events",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("type", String(32), nullable=False),
    Column("time", Float, nullable=False),
    Column("data", JSON, nullable=False),
)


feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64)),  # None for a lesson that belongs to no run (a sample world's)
    Column("score", Integer, nullable=False),  # 1 (bad) .. 5 (good)
    Column("note", Text, nullable=False),
    Column("goal", Text),  # the run's goal, copied so a lesson is recalled even if the run is pruned
    Column("source", String(32), nullable=False),  # operator, sample
    Column("created", DateTime(timezone=True), nullable=False),
)

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
