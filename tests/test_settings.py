"""Settings: AGENTMESH_* variables, agentmesh.toml (or AGENTMESH_CONFIG), the OpenAI SDK's variables, precedence,
clear errors, and masked output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentmesh import ConfigError, Settings, UserError, get_settings


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder (no agentmesh.toml) and none of the variables settings read."""
    import os

    for name in list(os.environ):
        if name.startswith("AGENTMESH_") or name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_run_offline_with_sqlite_under_the_home(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.model_name == "offline" and settings.offline
    assert settings.resolved_home == tmp_path / ".agentmesh"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / '.agentmesh' / 'agentmesh.db'}"
    assert settings.approvals == "wait"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTMESH_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("AGENTMESH_MODEL_RETRIES", "5")
    monkeypatch.setenv("AGENTMESH_APPROVALS", "auto")
    monkeypatch.setenv("AGENTMESH_DATABASE_URL", "postgresql://u:p@db/agentmesh")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-0000")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    settings = Settings()
    assert settings.resolved_home == tmp_path / "state"
    assert settings.model_retries == 5
    assert settings.approvals == "auto"
    assert settings.resolved_database_url == "postgresql://u:p@db/agentmesh"
    assert settings.openai_api_key is not None and settings.openai_api_key.get_secret_value() == "sk-env-key-0000"
    assert settings.openai_base_url == "http://127.0.0.1:8000/v1"
    assert settings.model_name == "gpt-4o-mini" and not settings.offline  # a key and no model named


def test_toml_file_below_environment_below_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "agentmesh.toml").write_text(
        'max_plan_rounds = 3\nmax_tool_rounds = 4\ngraph = "ops"\n'
        "[prices.my-local-model]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n"
    )
    monkeypatch.setenv("AGENTMESH_MAX_TOOL_ROUNDS", "9")
    settings = Settings()
    assert settings.max_plan_rounds == 3  # from the file
    assert settings.max_tool_rounds == 9  # the environment beats the file
    assert settings.graph == "ops"
    price = settings.price("my-local-model")
    assert price is not None and (price.input_per_mtok, price.output_per_mtok) == (1.0, 2.0)
    assert Settings(max_tool_rounds=2).max_tool_rounds == 2  # arguments beat both
    assert get_settings(max_tool_rounds=None).max_tool_rounds == 9  # None overrides are ignored


def test_agentmesh_config_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "team.toml"
    other.parent.mkdir()
    other.write_text("max_plan_rounds = 4\n")
    (tmp_path / "agentmesh.toml").write_text("max_plan_rounds = 7\n")
    monkeypatch.setenv("AGENTMESH_CONFIG", str(other))
    assert Settings().max_plan_rounds == 4


def test_agentmesh_config_naming_a_missing_file_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGENTMESH_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml"):
        Settings()


def test_a_named_model_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        Settings(model="gpt-4o-mini")
    assert isinstance(ConfigError("x"), UserError)  # exit 2 at the CLI
    assert Settings(model="offline").offline


def test_prices_default_table_and_unknown_models() -> None:
    settings = Settings()
    mini = settings.price("gpt-4o-mini")
    assert mini is not None and mini.input_per_mtok > 0 and mini.output_per_mtok > mini.input_per_mtok
    assert settings.price("some-llama-on-a-laptop") is None  # unknown models: tokens only


def test_masked_hides_the_key_and_database_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-secret-1234567890"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    settings = Settings(database_url="postgresql://agent:hunter2pass@db.internal:5432/mesh",
                        checkpoint_url="postgresql://cp:s3cretcp@db.internal/cp")
    masked = settings.masked()
    text = repr(masked)
    for leaked in (secret, "hunter2pass", "s3cretcp", "sk-secret"):
        assert leaked not in text
    assert masked["openai_api_key"].startswith("*")
    assert "db.internal" in masked["database_url"] and "agent" in masked["database_url"]
    assert "hunter2pass" not in masked["resolved_database_url"]
    assert secret not in repr(settings) and secret not in str(settings.model_dump())


def test_invalid_values_are_rejected() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(approvals="sometimes")
    with pytest.raises(ValidationError):
        Settings(model_retries=-1)


# -- configuration mistakes at the CLI: exit 2, one line naming the file and line (or the variable) -----------

AGENTMESH = Path(sys.executable).with_name("agentmesh")


def _config(tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_") and k != "OPENAI_API_KEY"}
    clean["AGENTMESH_HOME"] = str(tmp_path / "home")
    return subprocess.run([str(AGENTMESH), "config"], cwd=tmp_path, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def _one_line_exit_2(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    return lines[0]


# (agentmesh.toml, what the one line must say)
BAD_FILES = [
    ('model = "offline"\nmax_plan_rounds = = 3\n', "agentmesh.toml:2: not valid TOML"),
    ('model = "offline"\nplugins = [\n  "operations",\n', "agentmesh.toml:3: not valid TOML"),  # never closed
    ('graph = "mesh"\n\nmodle = "gpt-4o"\n', "agentmesh.toml:3: modle: unknown setting (did you mean 'model'?)"),
    ('[max_plan_round]\n', "agentmesh.toml:1: max_plan_round: unknown setting (did you mean 'max_plan_rounds'?)"),
    ('max_plan_rounds = "lots"\n', "agentmesh.toml:1: max_plan_rounds: Input should be a valid integer"),
    ('\n\nmax_plan_rounds = 99\n', "agentmesh.toml:3: max_plan_rounds: Input should be less than or equal to 10"),
    ('approvals = "sometimes"\n', "agentmesh.toml:1: approvals: Input should be 'wait', 'auto' or 'deny'"),
    ('plugins = "operations"\n', "agentmesh.toml:1: plugins: Input should be a valid list"),
    ('dry_run = 3\n', "agentmesh.toml:1: dry_run: Input should be a valid boolean"),
    ('[prices.my-model]\ninput_per_mtok = "cheap"\noutput_per_mtok = 1\n',
     "agentmesh.toml:2: prices.my-model.input_per_mtok: Input should be a valid number"),
    ('[mcp.servers.files]\ncommand = "x"\ncomand = "y"\n', "agentmesh.toml:3: mcp.servers.files.comand: unknown key"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES, ids=[e.split(": ", 1)[1][:40] for _, e in BAD_FILES])
def test_a_bad_settings_file_is_one_line_naming_the_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "agentmesh.toml").write_text(text)
    line = _one_line_exit_2(_config(tmp_path))
    assert f"settings file {expected}" in line


BAD_VARIABLES = [
    ({"AGENTMESH_MAX_PLAN_ROUNDS": "lots"}, "AGENTMESH_MAX_PLAN_ROUNDS: Input should be a valid integer"),
    ({"AGENTMESH_APPROVALS": "sometimes"}, "AGENTMESH_APPROVALS: Input should be 'wait', 'auto' or 'deny'"),
    ({"AGENTMESH_DRY_RUN": "perhaps"}, "AGENTMESH_DRY_RUN: Input should be a valid boolean"),
    ({"AGENTMESH_PLUGINS": '["operations"'}, "AGENTMESH_PLUGINS: not valid JSON"),
    ({"AGENTMESH_PRICES": "cheap"}, "AGENTMESH_PRICES: not valid JSON"),
    ({"AGENTMESH_PRICES": '{"m": {"input_per_mtok": "x", "output_per_mtok": 1}}'},
     "AGENTMESH_PRICES.m.input_per_mtok: Input should be a valid number"),
    ({"AGENTMESH_CONFIG": "nowhere.toml"}, "AGENTMESH_CONFIG names nowhere.toml, which does not exist"),
]


@pytest.mark.parametrize(("env", "expected"), BAD_VARIABLES, ids=[e.split(":")[0] for _, e in BAD_VARIABLES])
def test_a_bad_variable_is_one_line_naming_the_variable(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    assert expected in _one_line_exit_2(_config(tmp_path, env))


def test_a_bad_policy_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text("# my policy\napproval_required = [\"scale_service\"\n")
    line = _one_line_exit_2(subprocess.run(
        [str(AGENTMESH), "policy", "show"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "AGENTMESH_HOME": str(tmp_path / "home"), "AGENTMESH_POLICY_FILE": "policy.toml"}))
    assert "policy file policy.toml:2: not valid TOML" in line


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("AGENTMESH_TOOLS_PATHS", "examples/my_graph/tools", [Path("examples/my_graph/tools")]),
    ("AGENTMESH_TOOLS_PATHS", "a/tools, b/tools", [Path("a/tools"), Path("b/tools")]),
    ("AGENTMESH_TOOLS_PATHS", '["a/tools", "b,c/tools"]', [Path("a/tools"), Path("b,c/tools")]),  # JSON as before
    ("AGENTMESH_GRAPHS_PATHS", "my_graphs", [Path("my_graphs")]),
    ("AGENTMESH_PLUGINS", "operations,mypkg.mod:plugin", ["operations", "mypkg.mod:plugin"]),
    ("AGENTMESH_PLUGINS", "operations", ["operations"]),
    ("AGENTMESH_PLUGINS", "", []),
    ("AGENTMESH_REMOTE_ROLES", "analyst,operator", ["analyst", "operator"]),
])
def test_list_settings_take_a_plain_value_a_comma_list_or_json(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: list[object]
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(), variable.removeprefix("AGENTMESH_").lower()) == expected


def test_every_list_setting_takes_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list setting added later gets the same reading, with no list of names to keep up to date."""
    from typing import get_origin

    lists = [name for name, field in Settings.model_fields.items() if get_origin(field.annotation) is list]
    assert {"plugins", "tools_paths", "graphs_paths", "remote_roles"} <= set(lists)
    for name in lists:
        with monkeypatch.context() as env:
            env.setenv(f"AGENTMESH_{name.upper()}", "one, two")
            assert [str(v) for v in getattr(Settings(), name)] == ["one", "two"], name


def test_a_plain_list_in_the_environment_reaches_the_cli(tmp_path: Path) -> None:
    done = _config(tmp_path, {"AGENTMESH_TOOLS_PATHS": "examples/my_graph/tools,more/tools",
                              "AGENTMESH_PLUGINS": "operations"})
    assert done.returncode == 0, done.stderr
    assert "tools_paths = ['examples/my_graph/tools', 'more/tools']" in done.stdout
    assert "plugins = ['operations']" in done.stdout
