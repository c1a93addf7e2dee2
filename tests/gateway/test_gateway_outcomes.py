"""Gateway order and outcomes: invalid arguments, role refusals, policy limits and dry runs are audited once
each, explained to the model in a ToolMessage, and the run goes on to a decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gateway_harness import GatewayHarness, MeshScript

import agentmesh
from agentmesh.core.settings import Settings
from agentmesh.persistence import audit
from agentmesh.plugins.operations.world import World
from agentmesh.runtime.components import components
from agentmesh.testing import OpenAIServer


def replicas(world: Any, service: str) -> int:
    return next(s["replicas"] for s in world.snapshot()["services"] if s["name"] == service)


def test_bad_calls_reach_the_model_as_tool_messages_and_the_run_decides(settings: Settings) -> None:
    script = MeshScript(steps={
        "analyst": [
            ("get_service_metrics", {"service": 5}),                              # wrong type
            ("get_service_metrics", {}),                                          # missing
            ("get_service_metrics", {"service": "checkout-api", "region": "eu"}),  # extra
            ("scale_service", {"service": "checkout-api", "replicas": 6}),        # not the analyst's
            ("delete_everything", {}),                                            # no such tool
            ("get_service_metrics", {"service": "checkout-api"}),                 # fine
        ],
        "optimizer": [
            ("scale_service", {"service": "checkout-api", "replicas": 13}),  # above max (12)
            ("scale_service", {"service": "checkout-api", "replicas": 11}),  # change 7 > 6 per call
            ("scale_service", {"service": "checkout-api", "replicas": 10}),  # cost 62.30 > ceiling 60
            ("resolve_ticket", {"ticket_id": "T-1006", "resolution": "refunded", "refund_usd": 450}),  # cap 200
            ("clean_dataset", {"dataset": "finance_ledger", "operations": [{"op": "dedupe"}]}),  # protected
            ("scale_service", {"service": "checkout-api", "replicas": 6}),   # allowed
        ],
    })

    result = agentmesh.run_goal("Bring checkout-api p95 under 300 ms, settle T-1006 and dedupe finance_ledger",
                                settings=settings, chat_model=script.model())

    assert result["status"] == "done", result["error"]
    assert result["decision"]["summary"] == "scripted decision"
    analyst = [(r["status"], r.get("error") or "") for r in script.seen["analyst"]]
    assert [s for s, _ in analyst] == ["invalid", "invalid", "invalid", "refused", "refused", "ok"]
    assert "service: Input should be a valid string" in analyst[0][1]
    assert "service: Field required" in analyst[1][1]
    assert "region: Extra inputs are not permitted" in analyst[2][1]
    assert "not offered 'scale_service'" in analyst[3][1]
    assert "no such tool" in analyst[4][1]

    optimizer = [(r["status"], r.get("error") or "") for r in script.seen["optimizer"]]
    assert [s for s, _ in optimizer] == ["refused"] * 5 + ["ok"]
    assert "between 2 and 12 replicas" in optimizer[0][1]
    assert "at most 6 replicas per call" in optimizer[1][1]
    assert "above the ceiling of $60.00" in optimizer[2][1]
    assert "capped at $200.00" in optimizer[3][1]
    assert "'finance_ledger' is protected" in optimizer[4][1]

    # One audit record per attempted call, keyed by the model's call id, with the status the model saw.
    records = {r.tool_call_id: r for r in audit.list_calls(components(settings).engine,
                                                                  result["run_id"])}
    expected = {f"analyst-{i}": s for i, (s, _) in enumerate(analyst)}
    expected |= {f"optimizer-{i}": s for i, (s, _) in enumerate(optimizer)}
    assert {k: r.status for k, r in records.items()} == expected
    assert records["optimizer-0"].agent == "optimizer" and records["optimizer-0"].risk == "write"
    assert records["optimizer-3"].reason == optimizer[3][1]

    snapshot = components(settings).resources.get(World).snapshot()
    assert replicas(components(settings).resources.get(World), "checkout-api") == 6
    assert next(t for t in snapshot["tickets"] if t["id"] == "T-1006")["refund_total_usd"] == 0
    assert next(d for d in snapshot["datasets"] if d["name"] == "finance_ledger")["versions"] == 1
    assert [a["args"] for a in result["decision"]["actions"]] == [{"service": "checkout-api", "replicas": 6}]


def test_malformed_json_from_a_real_openai_reply_is_invalid_and_the_run_goes_on(home: Path) -> None:
    script = MeshScript(steps={"analyst": [
        ("get_service_metrics", '{"bad": '),
        ("get_service_metrics", {"service": "checkout-api"}),
    ]})
    with OpenAIServer(responder=script.openai_responder) as server:
        settings = Settings(model="gpt-4o-mini", openai_api_key="sk-test", openai_base_url=server.base_url,
                            node_retries=0, model_retries=0)
        result = agentmesh.run_goal("Why is checkout-api slow?", settings=settings)
        bodies = list(server.requests)

    assert result["status"] == "done", result["error"]
    assert result["model"]["name"] == "gpt-4o-mini"
    assert [r["status"] for r in script.seen["analyst"]] == ["invalid", "ok"]
    assert "not valid JSON" in script.seen["analyst"][0]["error"]
    (record,) = [r for r in audit.list_calls(components(settings).engine, result["run_id"])
                 if r.tool_call_id == "analyst-0"]
    assert (record.status, record.tool, record.agent) == ("invalid", "get_service_metrics", "analyst")
    assert "not valid JSON" in (record.reason or "")
    # The endpoint got an answer for the malformed call id (OpenAI rejects a conversation without one).
    later = next(b for b in bodies if any(m.get("tool_call_id") == "analyst-0" for m in b["messages"]))
    answer = next(m for m in later["messages"] if m.get("tool_call_id") == "analyst-0")
    assert '"invalid"' in answer["content"]


@pytest.mark.parametrize(
    ("agent", "tool", "args", "status", "reason"),
    [
        ("analyst", "scale_service", {"service": "checkout-api", "replicas": 5}, "refused",
         "policy does not let the analyst call scale_service"),
        ("strategist", "get_service_metrics", {"service": "checkout-api"}, "refused",
         "policy does not let the strategist call get_service_metrics"),
        ("innovator", "resolve_ticket", {"ticket_id": "T-1001", "resolution": "x"}, "refused",
         "policy does not let the innovator call resolve_ticket"),
        ("optimizer", "scale_service", {"service": "checkout-api", "replicas": "many"}, "invalid",
         "replicas: Input should be a valid integer"),
        ("optimizer", "scale_service", {"service": "checkout-api", "replicas": -1}, "invalid",
         "replicas: Input should be greater than or equal to 0"),
        ("optimizer", "scale_service", ["checkout-api", 5], "invalid", "arguments must be a JSON object"),
        ("optimizer", "scale_service", {"service": "nope", "replicas": 5}, "failed", "no service 'nope'"),
        ("optimizer", "resolve_ticket", {"ticket_id": "T-1001", "resolution": "x", "refund_usd": 200.01}, "refused",
         "capped at $200.00"),
        ("optimizer", "scale_service", {"service": "recommendations", "replicas": 17}, "refused",
         "between 1 and 16 replicas"),
    ],
)
async def test_each_outcome_is_audited_once(make_gateway: Any, agent: str, tool: str, args: Any, status: str,
                                            reason: str) -> None:
    gw: GatewayHarness = make_gateway()
    before = gw.world.snapshot()

    answer = await gw.call(tool, args, agent=agent, call_id="c1")

    assert answer["status"] == status
    assert reason in answer["error"]
    (record,) = gw.records()
    assert (record.tool_call_id, record.status, record.agent, record.tool) == ("c1", status, agent, tool)
    assert record.reason == answer["error"] and record.ended is not None
    assert gw.world.snapshot() == before


async def test_validation_comes_before_role_permission(make_gateway: Any) -> None:
    # The order is argument validation → role permission: a role without the tool hears what is wrong with
    # its arguments only if it is offered the tool; the policy check comes after validation either way.
    gw: GatewayHarness = make_gateway()
    answer = await gw.call("scale_service", {"service": "checkout-api"}, agent="analyst")
    assert answer["status"] == "invalid"
    answer = await gw.call("scale_service", {"service": "checkout-api"}, agent="analyst",
                           offered=gw.offered("analyst"))
    assert answer["status"] == "refused"


async def test_dry_run_executes_no_write_but_audits_it(make_gateway: Any, home: Path) -> None:
    gw: GatewayHarness = make_gateway(settings=Settings(model="offline", dry_run=True))
    before = gw.world.snapshot()

    scaled = await gw.call("scale_service", {"service": "checkout-api", "replicas": 6}, call_id="w1")
    refunded = await gw.call("resolve_ticket", {"ticket_id": "T-1002", "resolution": "sorry", "refund_usd": 20},
                             call_id="w2")
    noticed = await gw.call("notify_operations", {"message": "hello", "severity": "info"}, call_id="w3")
    read = await gw.call("get_service_metrics", {"service": "checkout-api"}, call_id="r1")

    assert [a["status"] for a in (scaled, refunded, noticed)] == ["dry_run"] * 3
    assert scaled["error"] == "dry run: not executed"
    assert read["status"] == "ok" and read["result"]["replicas"] == 4  # reads still answer
    assert gw.world.snapshot() == before
    by_id = {r.tool_call_id: r for r in gw.records()}
    assert {k: (r.status, r.dry_run) for k, r in by_id.items()} == {
        "w1": ("dry_run", True), "w2": ("dry_run", True), "w3": ("dry_run", True), "r1": ("ok", True),
    }


def test_dry_run_goal_leaves_the_world_as_it_was(home: Path) -> None:
    settings = Settings(model="offline", dry_run=True, node_retries=0)
    script = MeshScript(steps={"optimizer": [
        ("scale_service", {"service": "checkout-api", "replicas": 6}),
        ("resolve_ticket", {"ticket_id": "T-1002", "resolution": "refunded", "refund_usd": 84.5}),
    ]})
    world = components(settings).resources.get(World)
    world.ensure_initialised()
    before = world.snapshot()

    result = agentmesh.run_goal("Scale checkout-api and refund T-1002", settings=settings, chat_model=script.model())

    assert result["status"] == "done", result["error"]
    assert [r["status"] for r in script.seen["optimizer"]] == ["dry_run", "dry_run"]
    assert world.snapshot() == before
    assert result["decision"]["actions"] == []
