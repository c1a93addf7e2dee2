from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentmesh.core.exceptions import ConfigError
from agentmesh.gateway.policy import Policy
from agentmesh.interfaces.cli.world import policy_app, world_app
from agentmesh.plugins.operations import plugin
from agentmesh.plugins.operations.limits import WorldLimits

runner = CliRunner()


def test_default_policy(registry) -> None:
    policy = Policy.default(sections=plugin.policy_tables)
    limits = policy.section("world", WorldLimits)
    assert limits.refund_cap_usd == 200 and limits.daily_refund_budget_usd == 1000
    assert limits.limits_for("checkout-api").max_replicas == 12
    assert limits.limits_for("auth-api") == limits.default_service
    assert policy.allowed_roles(registry.get("scale_service")) == ("optimizer",)
    assert policy.allowed_roles(registry.get("simulate_scaling")) == ("innovator", "optimizer")
    assert "strategist" not in policy.allowed_roles(registry.get("get_ticket"))
    # Unattended by default: only promoting a prompt version (a person's decision) waits for approval.
    assert [t.name for t in registry if policy.needs_approval(t)] == ["promote_prompt"]


def test_tools_absent_from_roles_fall_back(registry) -> None:
    policy = Policy(roles={"analyst": ["get_ticket"]}, approval_required=["scale_service"])
    assert policy.allowed_roles(registry.get("get_ticket")) == ("analyst",)
    assert policy.allowed_roles(registry.get("scale_service")) == ("optimizer",)
    assert policy.needs_approval(registry.get("scale_service"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [("[world]\nrefund_cap_usd = ", "not valid TOML"), ("[world]\nrefund_cap_usd = -1", "world.refund_cap_usd"),
     ("[world.services.x]\nmin_replicas = 5\nmax_replicas = 2", "world.services.x"), ("typo = 1", "typo"),
     ("refund_cap_usd = 75", "`refund_cap_usd` belongs in the \\[world\\] table"), ("[warehouse]\nx = 1", "warehouse")],
)
def test_bad_policy_files(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason) as info:
        Policy.load(path, sections=plugin.policy_tables)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_world_cli(home: Path) -> None:
    result = runner.invoke(world_app, ["init"])
    assert result.exit_code == 0, result.output
    assert (home / "policy.toml").is_file()
    again = runner.invoke(world_app, ["init"])
    assert again.exit_code == 2 and "already exists" in again.output and "Traceback" not in again.output

    shown = runner.invoke(world_app, ["show", "--json"])
    snap = json.loads(shown.stdout)
    checkout = next(s for s in snap["services"] if s["name"] == "checkout-api")
    assert {"replicas", "min_replicas", "max_replicas", "p95_ms", "hourly_cost"} <= set(checkout)
    assert len(snap["tickets"]) == 40 and {"id", "status", "refund_total_usd"} <= set(snap["tickets"][0])
    assert len(snap["datasets"]) == 4

    from agentmesh.core.settings import get_settings
    from agentmesh.plugins.operations.world import World

    World.from_settings(get_settings()).scale_service("checkout-api", 6)
    assert runner.invoke(world_app, ["reset"]).exit_code == 0
    snap = json.loads(runner.invoke(world_app, ["show", "--json"]).stdout)
    assert next(s for s in snap["services"] if s["name"] == "checkout-api")["replicas"] == 4
    assert runner.invoke(world_app, ["show"]).exit_code == 0
    assert runner.invoke(world_app, ["init", "--force", "--sample", "nope"]).exit_code == 2


def test_show_on_empty_world(home: Path) -> None:
    result = runner.invoke(world_app, ["show", "--json"])
    assert result.exit_code == 2 and "world init" in result.output


def test_policy_cli(home: Path) -> None:
    data = json.loads(runner.invoke(policy_app, ["show", "--json"]).stdout)
    assert data["world"]["refund_cap_usd"] == 200 and data["world"]["services"]["checkout-api"]["max_replicas"] == 12
    home.mkdir(parents=True, exist_ok=True)
    (home / "policy.toml").write_text("[world]\nrefund_cap_usd = 50\n")
    data = json.loads(runner.invoke(policy_app, ["show", "--json"]).stdout)
    assert data["world"]["refund_cap_usd"] == 50 and data["source"].endswith("policy.toml")
    (home / "policy.toml").write_text("[world]\nrefund_cap_usd = 'lots'\n")
    bad = runner.invoke(policy_app, ["show"])
    assert bad.exit_code == 2 and "refund_cap_usd" in bad.output
