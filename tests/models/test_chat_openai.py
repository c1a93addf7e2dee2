"""The real langchain-openai HTTP path against the local server: tool calls, structured output, streaming."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.output_parsers.openai_tools import PydanticToolsParser
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from agentmesh.models import cost_usd, make_chat_model, usage_of
from agentmesh.testing import Reply, ToolCall, text, tool_call


class Weather(BaseModel):
    """The weather in a city."""

    city: str = Field(description="The city.")
    celsius: float = Field(ge=-90, le=60)


def get_service_metrics(service: str) -> str:
    """Metrics of one service.

    Args:
        service: the service name
    """
    return "p95 900 ms"


def scale_service(service: str, replicas: int) -> str:
    """Scale a service.

    Args:
        service: the service name
        replicas: how many replicas
    """
    return "ok"


def test_the_chat_model_is_chat_openai_with_sdk_retries_off(server, settings_for):
    chat = make_chat_model(settings_for(server, model_temperature=0.2))
    assert isinstance(chat, ChatOpenAI)
    assert chat.max_retries == 0
    assert chat.stream_usage is True
    assert chat.temperature == 0.2
    assert chat.openai_api_base == server.base_url


async def test_tool_call(server, settings_for):
    server.script.append(
        tool_call("get_service_metrics", {"service": "checkout-api"}, prompt_tokens=120, completion_tokens=9)
    )
    chat = make_chat_model(settings_for(server)).bind_tools([get_service_metrics])
    reply = await chat.ainvoke("how is checkout-api?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("get_service_metrics", {"service": "checkout-api"})
    ]
    assert usage_of(reply) == (120, 9)
    offered = server.requests[0]["tools"]
    assert [t["function"]["name"] for t in offered] == ["get_service_metrics"]


def test_parallel_tool_calls_sync(server, settings_for):
    server.script.append(
        Reply(
            tool_calls=[
                ToolCall(name="get_service_metrics", arguments={"service": "checkout-api"}, id="call_a"),
                ToolCall(name="scale_service", arguments={"service": "search", "replicas": 4}, id="call_b"),
            ]
        )
    )
    chat = make_chat_model(settings_for(server)).bind_tools([get_service_metrics, scale_service])
    reply = chat.invoke("do both")
    assert [(c["id"], c["name"], c["args"]) for c in reply.tool_calls] == [
        ("call_a", "get_service_metrics", {"service": "checkout-api"}),
        ("call_b", "scale_service", {"service": "search", "replicas": 4}),
    ]


async def test_malformed_tool_arguments_become_invalid_tool_calls(server, settings_for):
    server.script.append(tool_call("scale_service", '{"service": "search", "replicas": '))
    reply = await make_chat_model(settings_for(server)).bind_tools([scale_service]).ainvoke("scale")
    assert reply.tool_calls == []
    assert [c["name"] for c in reply.invalid_tool_calls] == ["scale_service"]


async def test_structured_output_json_schema(server, settings_for):
    server.script.append(text(json.dumps({"city": "Oslo", "celsius": -3.5})))
    chat = make_chat_model(settings_for(server)).with_structured_output(Weather)
    assert await chat.ainvoke("weather in Oslo?") == Weather(city="Oslo", celsius=-3.5)
    assert server.requests[0]["response_format"]["json_schema"]["name"] == "Weather"


async def test_structured_output_by_one_forced_tool(server, settings_for):
    """How agentmesh gets structured output: one output tool, tool_choice forced to it."""
    server.script.append(tool_call("Weather", {"city": "Lima", "celsius": 19}))
    chat = make_chat_model(settings_for(server)).bind_tools([Weather], tool_choice="Weather")
    reply = await chat.ainvoke("weather in Lima?")
    assert PydanticToolsParser(tools=[Weather], first_tool_only=True).invoke(reply) == Weather(
        city="Lima", celsius=19
    )
    assert server.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}


async def test_streaming_assembles_text_and_counts_usage(server, settings_for):
    server.token_delay_s = 0.001
    server.script.append(
        text("checkout-api p95 is 900 ms; scale it to 6 replicas.", prompt_tokens=50, completion_tokens=14)
    )
    chat = make_chat_model(settings_for(server))
    chunks = [chunk async for chunk in chat.astream("status?")]
    assert len(chunks) > 3
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert isinstance(whole, AIMessageChunk)
    assert whole.content == "checkout-api p95 is 900 ms; scale it to 6 replicas."
    assert usage_of(whole) == (50, 14)
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


async def test_streaming_tool_call_deltas_assemble(server, settings_for):
    server.script.append(tool_call("scale_service", {"service": "checkout-api", "replicas": 6}))
    chat = make_chat_model(settings_for(server)).bind_tools([scale_service])
    whole = None
    async for chunk in chat.astream("scale"):
        whole = chunk if whole is None else whole + chunk
    assert whole is not None
    assert [(c["name"], c["args"]) for c in whole.tool_calls] == [
        ("scale_service", {"service": "checkout-api", "replicas": 6})
    ]


async def test_cost_of_a_reply_from_the_price_table(server, settings_for):
    settings = settings_for(server)
    server.script.append(text("hi", prompt_tokens=2_000_000, completion_tokens=1_000_000))
    reply = await make_chat_model(settings).ainvoke("hi")
    tokens = usage_of(reply)
    assert tokens == (2_000_000, 1_000_000)
    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens
    assert cost_usd(settings, "gpt-4o-mini", *tokens) == pytest.approx(0.30 + 0.60)


def test_cost_uses_configured_prices_and_is_none_for_unknown_models(settings_for):
    settings = settings_for(
        "http://127.0.0.1:1/v1", prices={"my-llama": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    )
    assert cost_usd(settings, "my-llama", 500_000, 250_000) == pytest.approx(1.0)
    assert cost_usd(settings, "nobody-knows-me", 10, 10) is None
    assert cost_usd(settings, "offline", 10, 10) == 0.0


def test_usage_of_a_message_without_usage_is_zero():
    from langchain_core.messages import AIMessage

    assert usage_of(AIMessage(content="x")) == (0, 0)


def test_offline_settings_give_the_offline_model(home):
    offline = pytest.importorskip("agentmesh.models.offline")
    from agentmesh.core.settings import Settings

    assert isinstance(make_chat_model(Settings(model="offline")), offline.OfflineChatModel)
    assert isinstance(make_chat_model(Settings(), model="offline"), offline.OfflineChatModel)


def test_a_named_model_without_a_key_is_a_config_error(home):
    from agentmesh.core.exceptions import ConfigError
    from agentmesh.core.settings import Settings

    with pytest.raises(ConfigError, match="needs an API key"):
        make_chat_model(Settings(), model="gpt-4o")
