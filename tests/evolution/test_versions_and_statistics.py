"""The prompt store (import, promote, pending approval, rollback), the CLI over it, and the statistics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentmesh.core.exceptions import UserError
from agentmesh.core.settings import Settings
from agentmesh.evolution.proposals import add_instruction
from agentmesh.evolution.statistics import compare_paired, sign_test, split_scenarios
from agentmesh.interfaces.cli import app
from agentmesh.persistence.database import get_engine
from agentmesh.prompts import load_prompt, versions


def test_sign_test_is_exact() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(6, 0) == pytest.approx(1 / 64)
    assert sign_test(6, 2) == pytest.approx(sum(math.comb(8, i) for i in (6, 7, 8)) / 256)
    comparison = compare_paired({"a": 0, "b": 0, "c": 1}, {"a": 1, "b": 0, "c": 1})
    assert (comparison.wins, comparison.losses, comparison.ties, comparison.min_p_value) == (1, 0, 2, 1 / 8)


def test_split_is_by_id_hash_and_keeps_both_sides() -> None:
    ids = [f"s{i}" for i in range(40)]
    train, held = split_scenarios(ids, held_out=0.3, key=lambda s: s)
    assert split_scenarios(list(reversed(ids)), held_out=0.3, key=lambda s: s)[1] == list(reversed(held))
    assert 4 <= len(held) <= 20 and set(train) | set(held) == set(ids)
    # A scenario's side does not depend on the others.
    assert set(split_scenarios(ids[:20], held_out=0.3, key=lambda s: s)[1]) == set(held) & set(ids[:20])
    assert all(split_scenarios(["x", "y"], held_out=f, key=lambda s: s)[1] for f in (0.01, 0.99 - 1e-9))


def test_promote_rollback_and_what_runs_read(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert load_prompt("optimizer", engine=engine).path is not None  # no rows: the file
    assert versions.ensure_imported(engine, "optimizer") == 1
    assert load_prompt("optimizer", engine=engine).path is not None  # the file's own version: still the file
    text = versions.get_version(engine, "optimizer", 1)["text"]
    v2 = versions.add_version(engine, "optimizer", add_instruction(text, "Say please."), parent=1, source="manual",
                              rationale="politeness")
    versions.promote(engine, "optimizer", v2, actor="alice", reason="try it")
    promoted = load_prompt("optimizer", engine=engine)
    assert promoted.version == str(v2) and "Say please." in promoted.body
    assert versions.rollback(engine, "optimizer", actor="bob") == (v2, 1)
    assert "Say please." not in load_prompt("optimizer", engine=engine).body
    with pytest.raises(UserError, match="already active"):
        versions.rollback(engine, "optimizer", 1, actor="bob")
    assert [e["action"] for e in versions.history(engine, "optimizer")] == ["import", "propose", "promote", "rollback"]
    assert "+- Say please." in versions.diff(engine, "optimizer", 1, v2)


def test_a_pending_promotion_is_approved_by_prompts_promote(home: Path) -> None:
    engine = get_engine(Settings().resolved_database_url)
    versions.ensure_imported(engine, "analyst")
    text = versions.get_version(engine, "analyst", 1)["text"]
    v2 = versions.add_version(engine, "analyst", add_instruction(text, "Quote numbers."), parent=1,
                              source="evolution", rationale="r")
    versions.set_status(engine, "analyst", v2, "pending_approval", actor="evolution", reason="p = 0.01",
                        evidence={"p_value": 0.01})
    assert versions.active_version(engine, "analyst") == 1  # pending is not promoted
    runner = CliRunner()
    result = runner.invoke(app, ["prompts", "promote", "analyst", str(v2), "--as", "carol"])
    assert result.exit_code == 0, result.output
    approval = versions.history(engine, "analyst")[-1]
    assert (approval["action"], approval["actor"], approval["evidence"]) == ("approve", "carol", {"p_value": 0.01})
    result = runner.invoke(app, ["prompts", "rollback", "analyst"])
    assert result.exit_code == 0 and "v2 to v1" in result.output
    assert versions.active_version(engine, "analyst") == 1
    listing = runner.invoke(app, ["prompts", "list", "analyst", "--json"])
    assert '"status": "promoted"' in listing.output
