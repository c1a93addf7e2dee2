"""Settings: AGENTMESH_* variables, agentmesh.toml (or AGENTMESH_CONFIG), the OpenAI SDK's variables, precedence,
clear errors, and masked output."""

from __future__ import annotations

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
