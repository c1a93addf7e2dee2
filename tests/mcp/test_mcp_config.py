"""The `[mcp.servers.NAME]` tables and the naming rule, without starting a server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentmesh import Settings
from agentmesh.core.exceptions import ConfigError
from agentmesh.core.mcp_config import expand
from agentmesh.tools.mcp import MAX_NAME, tool_name


@pytest.mark.parametrize(("table", "why"), [
    ({"command": "python", "url": "http://127.0.0.1:9000/mcp"}, "either `command`"),
    ({}, "either `command`"),
    ({"url": "http://127.0.0.1:9000/mcp", "args": ["-v"]}, "are for stdio servers"),
    ({"command": "python", "headers": {"Authorization": "Bearer x"}}, "are for streamable HTTP servers"),
    ({"command": "python", "timeout": 3}, "Extra inputs are not permitted"),
])
def test_a_server_table_is_stdio_or_http_and_nothing_else(table: dict, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Settings(mcp={"servers": {"s": table}})


@pytest.mark.parametrize("name", ["my__server", "_hidden", "with space", "dotted.name", ""])
def test_a_server_name_cannot_blur_the_tool_names(name: str) -> None:
    with pytest.raises(ValidationError, match="MCP server name"):
        Settings(mcp={"servers": {name: {"command": "python"}}})


def test_tool_names_are_server_prefixed_valid_openai_function_names() -> None:
    assert tool_name("time", "get_current_time") == "time__get_current_time"
    assert tool_name("git-repo", "git.log/short") == "git-repo__git_log_short"
    long = tool_name("tracker", "x" * 100)
    assert len(long) == MAX_NAME and long.startswith("tracker__xxx") and long != tool_name("tracker", "x" * 101)


def test_variables_are_expanded_from_the_environment_and_a_missing_one_is_named() -> None:
    assert expand("Bearer ${TOKEN}", server="s", environ={"TOKEN": "abc"}) == "Bearer abc"
    assert expand("no $VARIABLE here", server="s", environ={}) == "no $VARIABLE here"
    with pytest.raises(ConfigError, match=r"MCP server 'tracker' needs \$\{TOKEN\}"):
        expand("Bearer ${TOKEN}", server="tracker", environ={})
