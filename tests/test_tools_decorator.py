"""The tool decorator: the argument schema from the signature and the docstring, bare and configured use,
a hidden ToolContext, and clear errors for what cannot be described to a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field, ValidationError

from agentmesh import ConfigError, Tool, ToolContext, ToolRegistry, tool


@tool
def get_weather(city: str, days: int = 1) -> dict:
    """Forecast for a city.

    Looks the city up and returns one entry per day.

    Args:
        city: The city name, e.g. "Lisbon".
        days: How many days ahead.
    """
    return {"city": city, "days": days}


@tool(risk="write", roles=["optimizer", "innovator"], idempotent=True, timeout_s=5, name="set_replicas")
def scale(
    service: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]+$")],
    replicas: Annotated[int, Field(ge=1, le=20)],
    ctx: ToolContext,
    mode: Literal["now", "gradual"] = "now",
) -> dict:
    """Set the replica count of a service.

    Args:
        service: Name of the service.
        replicas: The new replica count.
        mode: Apply at once or step by step.
    """
    return {"service": service, "replicas": replicas, "run": ctx.run_id}


def test_bare_decorator_builds_the_schema_from_signature_and_docstring() -> None:
    assert isinstance(get_weather, Tool)
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Forecast for a city.\n\nLooks the city up and returns one entry per day."
    assert get_weather.risk == "read" and get_weather.idempotent and not get_weather.requires_approval
    schema = get_weather.parameters_schema()
    assert schema["type"] == "object"
    assert schema["required"] == ["city"]
    assert schema["properties"]["city"] == {"type": "string", "description": 'The city name, e.g. "Lisbon".'}
    assert schema["properties"]["days"]["type"] == "integer"
    assert schema["properties"]["days"]["default"] == 1
    assert schema["properties"]["days"]["description"] == "How many days ahead."
    assert schema["additionalProperties"] is False
    assert get_weather.context_param is None
    assert get_weather.function("Porto", 2) == {"city": "Porto", "days": 2}  # still the plain function inside


def test_configured_decorator_and_annotated_constraints() -> None:
    assert scale.name == "set_replicas"
    assert scale.risk == "write" and scale.roles == ("optimizer", "innovator")
    assert scale.idempotent and scale.timeout_s == 5
    schema = scale.parameters_schema()
    replicas = schema["properties"]["replicas"]
    assert (replicas["minimum"], replicas["maximum"]) == (1, 20)
    assert replicas["description"] == "The new replica count."
    assert schema["properties"]["service"]["pattern"] == r"^[a-z][a-z0-9-]+$"
    assert schema["properties"]["mode"]["enum"] == ["now", "gradual"]
    assert set(schema["required"]) == {"service", "replicas"}

    valid = scale.args_model.model_validate({"service": "checkout-api", "replicas": 6})
    assert (valid.service, valid.replicas, valid.mode) == ("checkout-api", 6, "now")
    for bad in ({"service": "checkout-api", "replicas": 0}, {"service": "checkout-api", "replicas": 21},
                {"service": "Checkout API", "replicas": 3}, {"service": "checkout-api", "replicas": 3, "mode": "x"},
                {"replicas": 3}):
        with pytest.raises(ValidationError):
            scale.args_model.model_validate(bad)


def test_the_tool_context_parameter_is_hidden_from_the_model() -> None:
    assert scale.context_param == "ctx"
    schema = scale.openai_schema()
    assert schema["type"] == "function"
    assert schema["function"]["name"] == "set_replicas"
    assert "ctx" not in schema["function"]["parameters"]["properties"]
    assert "ToolContext" not in str(schema)
    with pytest.raises(ConfigError, match="ToolContext"):
        scale.as_langchain_tool()  # it can only run through the gateway, which injects the context


def test_extra_arguments_are_forbidden() -> None:
    with pytest.raises(ValidationError, match="extra"):
        get_weather.args_model.model_validate({"city": "Lisbon", "units": "metric"})


def test_defaults_follow_the_risk() -> None:
    @tool(risk="destructive")
    def drop_dataset(dataset: str) -> None:
        """Delete a dataset for good."""

    assert drop_dataset.requires_approval and not drop_dataset.idempotent
    assert drop_dataset.roles == ("optimizer",)

    @tool(risk="write")
    def notify(message: str) -> None:
        """Tell the operators."""

    assert not notify.requires_approval and not notify.idempotent and notify.roles == ("optimizer",)


def test_a_tool_without_a_docstring_is_a_config_error() -> None:
    def undocumented(x: int) -> int:
        return x

    with pytest.raises(ConfigError, match="undocumented.*docstring"):
        tool(undocumented)
    with pytest.raises(ConfigError, match="docstring"):
        tool(risk="write")(undocumented)


def test_var_arguments_cannot_be_described() -> None:
    def anything(*args: int, **kwargs: str) -> None:
        """Takes anything."""

    with pytest.raises(ConfigError, match=r"\*args"):
        tool(anything)


def test_langchain_adapter_for_context_free_tools() -> None:
    adapted = get_weather.as_langchain_tool()
    assert adapted.name == "get_weather"
    assert adapted.invoke({"city": "Lisbon", "days": 3}) == {"city": "Lisbon", "days": 3}


def test_a_users_tools_folder_loads_beside_the_builtins(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(
        "from agentmesh import tool\n\n"
        "@tool\n"
        "def count_open_incidents(team: str) -> int:\n"
        '    """How many incidents a team has open.\n\n    Args:\n        team: The team name.\n    """\n'
        "    return 3\n"
    )
    (tmp_path / "_private.py").write_text("raise RuntimeError('files starting with _ are not loaded')\n")
    registry = ToolRegistry.load([tmp_path])
    assert "count_open_incidents" in registry and "promote_prompt" in registry
    assert registry.get("count_open_incidents").parameters_schema()["properties"]["team"]["description"] == (
        "The team name."
    )


def test_a_broken_tools_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    with pytest.raises(ConfigError, match="broken.py"):
        ToolRegistry.load([tmp_path], builtins=False)
    with pytest.raises(ConfigError, match="does not exist"):
        ToolRegistry.load([tmp_path / "missing"], builtins=False)
