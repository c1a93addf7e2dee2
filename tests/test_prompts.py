"""Prompts are files with front matter, rendered with strict undefined variables; a user's folder overrides the
bundled prompts role by role."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh import ConfigError, NotFoundError
from agentmesh.prompts import PromptTemplate, list_roles, load_prompt

ROLES = ("strategist", "analyst", "optimizer", "innovator")
TOOLS = [{"name": "get_service_metrics", "risk": "read", "summary": "Metrics of one service."}]


def test_front_matter_is_parsed() -> None:
    template = PromptTemplate.from_text(
        "---\nrole: auditor\nversion: 3\ntools: [get_ticket, list_tickets]\ndescription: Checks refunds.\n"
        "owner: finance\n---\nYou are the **{{ role }}**. Goal: {{ goal }}\n"
    )
    assert template.role == "auditor"
    assert template.version == "3"
    assert template.tools == ["get_ticket", "list_tickets"]
    assert template.description == "Checks refunds."
    assert template.extra == {"owner": "finance"}
    assert template.render(goal="check T-1001") == "You are the **auditor**. Goal: check T-1001\n"


def test_tools_auto_means_whatever_the_policy_allows() -> None:
    assert PromptTemplate.from_text("---\nrole: helper\ntools: auto\n---\nhi\n").tools is None
    assert PromptTemplate.from_text("---\nrole: helper\n---\nhi\n").tools is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("You are the analyst.\n", "no front matter"),
        ("---\nrole: analyst\nno closing fence\n", "not closed"),
        ("---\nrole: Not A Role\n---\nbody\n", "role"),
        ("---\nversion: 1\n---\nbody\n", "role"),
        ("---\nrole: [unclosed\n---\nbody\n", "YAML"),
    ],
    ids=["missing", "unclosed", "bad-role", "no-role", "bad-yaml"],
)
def test_bad_front_matter_is_a_config_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PromptTemplate.from_text(text, path=Path("prompts/x.md"))


def test_a_missing_variable_fails_loudly() -> None:
    template = PromptTemplate.from_text("---\nrole: analyst\n---\nTarget: {{ target_ms }} ms\n", path=Path("a.md"))
    with pytest.raises(ConfigError, match="target_ms"):
        template.render()
    attribute = PromptTemplate.from_text("---\nrole: analyst\n---\n{{ service.name }}\n")
    with pytest.raises(ConfigError, match="service"):
        attribute.render()


def test_the_strategist_prompt_needs_its_stage() -> None:
    strategist = load_prompt("strategist")
    with pytest.raises(ConfigError):
        strategist.render(tools=[], max_steps=8)
    rendered = {stage: strategist.render(tools=[], max_steps=8, stage=stage) for stage in ("plan", "review", "decide")}
    assert "submit_plan" in rendered["plan"] and "submit_review" in rendered["review"]
    assert "submit_decision" in rendered["decide"]


@pytest.mark.parametrize("role", ROLES)
def test_bundled_prompts_parse_and_render(role: str) -> None:
    template = load_prompt(role)
    assert template.role == role
    assert template.path is not None and template.path.name == f"{role}.md"
    assert template.description
    text = template.render(tools=TOOLS, max_steps=8, stage="plan")
    assert f"**{role}**" in text
    assert "{{" not in text and "{%" not in text


def test_a_user_prompts_folder_overrides_the_bundled_prompt(tmp_path: Path) -> None:
    (tmp_path / "analyst.md").write_text(
        "---\nrole: analyst\nversion: 7\ntools: [get_service_metrics]\n---\n"
        "You are the **analyst**, ours.\n{% include \"_shared/tools.md\" %}\n"
    )
    (tmp_path / "auditor.md").write_text("---\nrole: auditor\n---\nYou are the **auditor**.\n")

    mine = load_prompt("analyst", folder=tmp_path)
    assert mine.version == "7" and mine.path == tmp_path / "analyst.md"
    rendered = mine.render(tools=TOOLS)
    assert "ours" in rendered and "get_service_metrics" in rendered  # bundled fragments still resolve
    assert load_prompt("optimizer", folder=tmp_path).path != tmp_path / "optimizer.md"  # others stay bundled
    assert load_prompt("optimizer", folder=tmp_path).sha == load_prompt("optimizer").sha
    assert "auditor" in list_roles(tmp_path) and set(ROLES) <= set(list_roles(tmp_path))
    assert mine.sha != load_prompt("analyst").sha


def test_an_unknown_role_has_no_prompt() -> None:
    with pytest.raises(NotFoundError, match="no-such-role"):
        load_prompt("no-such-role")
