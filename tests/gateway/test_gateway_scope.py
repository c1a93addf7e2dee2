"""The scope guard: a scripted model that scales the wrong service is stopped — refused, or held for a person — per
the policy's ``[scope]``, and audited with the reason; the scope is resolved from the goal and the world once, at the
run's start, recorded on the run, and nothing the model or a tool says changes it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from gateway_harness import MeshScript, write_policy

import agentmesh
from agentmesh.core.exceptions import ConfigError
from agentmesh.core.settings import Settings
from agentmesh.gateway.scope import resolve_scope
from agentmesh.persistence import audit
from agentmesh.persistence.events import event_log
from agentmesh.plugins.operations.scope import scope_entities
from agentmesh.plugins.operations.world import World
from agentmesh.runtime.approvals import aapprove
from agentmesh.runtime.components import components

GOAL = "checkout-api p95 is too high; bring it under 300 ms"
WRONG = ("scale_service", {"service": "payments-api", "replicas": 6})
RIGHT = ("scale_service", {"service": "checkout-api", "replicas": 6})


def replicas(settings: Settings, service: str) -> int:
    world = components(settings).resources.get(World)
    return next(s["replicas"] for s in world.snapshot()["services"] if s["name"] == service)


def scale_records(settings: Settings, run_id: str) -> list[audit.ToolCallRecord]:
    return [r for r in audit.list_calls(components(settings).engine, run_id) if r.tool == "scale_service"]


def test_the_scope_is_resolved_from_names_descriptions_and_whole_kinds_never_wider(settings: Settings) -> None:
    kinds = scope_entities(settings, components(settings).resources, create=True)
    named = resolve_scope("checkout-api is slow and T-1012 is about it", kinds)
    assert named.entities == {"service": ["checkout-api"], "ticket": ["T-1012"]}
    described = resolve_scope("the login thing is slow, and dedupe the CRM export", kinds)
    assert described.covers("service", "auth-api") and described.covers("dataset", "customers")
    assert not described.covers("service", "checkout-api") and not described.covers("dataset", "orders")
    whole = resolve_scope("Check the health of every service", kinds)
    assert whole.covers("service", "search-api") and not whole.covers("ticket", "T-1001")
    # A goal that names nothing the world holds has an empty scope: every write is outside it.
    empty = resolve_scope("renew our TLS certificate", kinds)
    assert not any(empty.covers(kind, name) for kind, name in
                   [("service", "checkout-api"), ("dataset", "orders"), ("ticket", "T-1001")])
    assert empty.describe() == "nothing the goal names"
    # A kind no plug-in lists (an MCP tool's issue id) is in scope only when the goal names the value itself.
    assert named.covers("issue_id", "t-1012") and not named.covers("issue_id", "ABC-1")


def test_a_write_on_a_service_the_goal_does_not_name_waits_for_a_person_and_is_audited(settings: Settings) -> None:
    script = MeshScript(steps={"optimizer": [WRONG, RIGHT]})
    assert replicas(settings, "payments-api") == 4

    paused = agentmesh.run_goal(GOAL, settings=settings, chat_model=script.model(), approvals="wait")

    assert paused["status"] == "waiting_approval", paused["error"]
    assert paused["scope"]["entities"]["service"] == ["checkout-api"]
    (pending,) = paused["pending_approvals"]
    assert (pending["tool"], pending["args"]) == WRONG
    assert pending["scope"].startswith("service payments-api is outside the goal's scope (scope: service checkout-api")
    assert replicas(settings, "payments-api") == 4  # nothing happened yet
    events = event_log(components(settings).engine).read(paused["run_id"])
    requested = next(e for e in events if e["type"] == "approval_requested")
    assert "outside the goal's scope" in requested["reason"]
    assert [e["scope"]["entities"]["service"] for e in events if e["type"] == "scope"] == [["checkout-api"]]

    # A person decides: the call runs, and its audit keeps why it needed them.
    result = asyncio.run(aapprove(paused["run_id"], approved=True, approver="alice", settings=settings,
                                  chat_model=script.model()))
    assert result["status"] == "done", result["error"]
    wrong, right = scale_records(settings, paused["run_id"])
    assert (wrong.status, wrong.approval, wrong.approver) == ("ok", "approved", "alice")
    assert wrong.scope is not None and "outside the goal's scope" in wrong.scope
    assert (right.status, right.approval, right.scope) == ("ok", None, None)  # inside the scope: no approval
    assert replicas(settings, "payments-api") == 6
    # Resolved once: the recorded scope did not change on resume.
    assert result["scope"] == paused["scope"]
    events = event_log(components(settings).engine).read(paused["run_id"])
    assert len([e for e in events if e["type"] == "scope"]) == 1


def test_scope_refuse_refuses_the_wrong_service_and_the_run_goes_on(settings: Settings, home: Path) -> None:
    write_policy(home, lambda text: text + '\n[scope]\noutside = "refuse"\n')
    script = MeshScript(steps={"optimizer": [WRONG, RIGHT]})

    result = agentmesh.run_goal(GOAL, settings=settings, chat_model=script.model(), approvals="wait")

    assert result["status"] == "done", result["error"]
    wrong, right = scale_records(settings, result["run_id"])
    assert wrong.status == "refused"
    assert wrong.reason is not None
    assert wrong.reason.startswith("service payments-api is outside the goal's scope (scope: service checkout-api")
    assert right.status == "ok"
    assert replicas(settings, "payments-api") == 4 and replicas(settings, "checkout-api") == 6
    # The model was told why.
    assert "outside the goal's scope" in script.seen["optimizer"][0]["error"]
    assert result["decision"]["actions"] == [{"tool": "scale_service", "args": RIGHT[1], "status": "ok",
                                              "agent": "optimizer"}]


def test_approvals_auto_does_not_approve_an_out_of_scope_call(settings: Settings) -> None:
    """In a fresh home: no world exists when the run starts (none is created for it), so the scope is resolved
    — and recorded — before the first write that names a target."""
    script = MeshScript(steps={"optimizer": [WRONG]})
    assert not components(settings).resources.built(World)

    result = agentmesh.run_goal(GOAL, settings=settings, chat_model=script.model(), approvals="auto")

    assert result["scope"]["entities"]["service"] == ["checkout-api"]
    events = event_log(components(settings).engine).read(result["run_id"])
    assert [e["type"] for e in events].count("scope") == 1
    assert result["status"] == "done", result["error"]
    (wrong,) = scale_records(settings, result["run_id"])
    assert (wrong.status, wrong.approval) == ("rejected", "rejected")
    assert "only a person can approve it, not --approvals auto" in (wrong.reason or "")
    assert replicas(settings, "payments-api") == 4


def test_a_per_tool_rule_allows_what_the_policy_says_and_the_audit_still_says_it_was_outside(
        settings: Settings, home: Path) -> None:
    write_policy(home, lambda text: text + '\n[scope]\noutside = "refuse"\n[scope.tools]\nscale_service = "allow"\n')
    script = MeshScript(steps={"optimizer": [WRONG]})

    result = agentmesh.run_goal(GOAL, settings=settings, chat_model=script.model(), approvals="wait")

    (wrong,) = scale_records(settings, result["run_id"])
    assert wrong.status == "ok" and wrong.scope is not None and "outside the goal's scope" in wrong.scope
    assert replicas(settings, "payments-api") == 6


def test_a_scope_rule_naming_no_tool_is_an_error(settings: Settings, home: Path) -> None:
    write_policy(home, lambda text: text + '\n[scope.tools]\nscale_servise = "allow"\n')
    with pytest.raises(ConfigError, match=r"policy.toml:\d+: scope.tools: unknown tool 'scale_servise' "
                                          r"\(did you mean 'scale_service'\?\)"):
        components(Settings(model="offline"))
