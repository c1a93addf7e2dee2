"""`agentmesh tools --json` and `agentmesh policy show --json`: what a user sees of tools, risks, roles and
limits, as the gateway will apply them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from gateway_harness import write_policy
from typer.testing import CliRunner

from agentmesh.interfaces.cli import app

BUILTINS = {
    "list_services": ("read", ["analyst", "innovator", "optimizer"]),
    "get_service_metrics": ("read", ["analyst", "innovator", "optimizer"]),
    "simulate_scaling": ("read", ["innovator", "optimizer"]),
    "scale_service": ("write", ["optimizer"]),
    "list_datasets": ("read", ["analyst", "innovator", "optimizer"]),
    "profile_dataset": ("read", ["analyst", "innovator", "optimizer"]),
    "clean_dataset": ("write", ["optimizer"]),
    "list_tickets": ("read", ["analyst", "innovator", "optimizer"]),
    "get_ticket": ("read", ["analyst", "innovator", "optimizer"]),
    "resolve_ticket": ("write", ["optimizer"]),
    "escalate_ticket": ("write", ["optimizer"]),
    "notify_operations": ("write", ["optimizer"]),
}


def invoke(*args: str) -> object:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_tools_json_lists_every_builtin_with_its_schema(home: Path) -> None:
    rows = invoke("tools", "--json")

    assert isinstance(rows, list)
    by_name = {r["name"]: r for r in rows}
    assert set(BUILTINS) <= set(by_name)
    for name, (risk, roles) in BUILTINS.items():
        row = by_name[name]
        assert {"name", "description", "risk", "roles", "parameters"} <= set(row)
        assert (row["risk"], row["roles"]) == (risk, roles), name
        assert row["description"].strip()
        assert row["parameters"]["type"] == "object"
        assert "ctx" not in row["parameters"].get("properties", {})  # the injected context is hidden
        assert row["parameters"].get("additionalProperties") is False
    scale = by_name["scale_service"]["parameters"]
    assert sorted(scale["required"]) == ["replicas", "service"]
    assert scale["properties"]["replicas"]["type"] == "integer"
    assert scale["properties"]["replicas"]["minimum"] == 0
    assert scale["properties"]["service"]["description"].startswith("Name of the service")
    refund = by_name["resolve_ticket"]["parameters"]["properties"]["refund_usd"]
    assert refund["default"] == 0 and refund["minimum"] == 0


def test_tools_json_shows_user_tools_and_policy_roles(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "cache.py").write_text(textwrap.dedent('''
        from agentmesh.tools import tool


        @tool(risk="destructive", roles=["optimizer"])
        def flush_cache(service: str, confirm: bool = False) -> dict:
            """Flush a service's cache.

            Args:
                service: The service whose cache to flush.
                confirm: Must be true.
            """
            return {"flushed": service}
    '''), encoding="utf-8")
    monkeypatch.setenv("AGENTMESH_TOOLS_PATHS", json.dumps([str(folder)]))
    write_policy(home, lambda text: text.replace('innovator = [\n', 'innovator = [\n    "scale_service",\n'))

    by_name = {r["name"]: r for r in invoke("tools", "--json")}

    flush = by_name["flush_cache"]
    assert (flush["risk"], flush["roles"], flush["requires_approval"]) == ("destructive", ["optimizer"], True)
    assert flush["parameters"]["properties"]["confirm"] == {"default": False, "description": "Must be true.",
                                                            "type": "boolean"}
    assert by_name["scale_service"]["roles"] == ["innovator", "optimizer"]


def test_policy_show_json_includes_the_limits(home: Path) -> None:
    data = invoke("policy", "show", "--json")

    assert data["world"]["refund_cap_usd"] == 200.0
    assert data["world"]["daily_refund_budget_usd"] == 1000.0
    assert data["world"]["hourly_cost_ceiling_usd"] == 60.0
    assert data["world"]["protected_datasets"] == ["finance_ledger"]
    assert data["world"]["services"]["checkout-api"] == {"min_replicas": 2, "max_replicas": 12, "max_change_per_call": 6}
    assert data["roles"]["strategist"] == []
    assert data["source"].endswith("default_policy.toml")


def test_policy_show_json_reads_the_edited_home_policy(home: Path) -> None:
    path = write_policy(home, lambda text: text.replace("refund_cap_usd = 200.0", "refund_cap_usd = 75.5")
                        .replace("approval_required = []", 'approval_required = ["scale_service"]'))

    data = invoke("policy", "show", "--json")

    assert data["world"]["refund_cap_usd"] == 75.5
    assert data["approval_required"] == ["scale_service"]
    assert data["source"] == str(path)


def test_policy_show_rejects_a_bad_policy_file_in_one_line(home: Path) -> None:
    write_policy(home, lambda text: text.replace("refund_cap_usd = 200.0", "refund_cap_usd = -1"))

    result = CliRunner().invoke(app, ["policy", "show", "--json"])

    assert result.exit_code == 2
    assert "refund_cap_usd" in result.output and "Traceback" not in result.output
