"""Whatever the goal and whatever the tools return, the offline model answers and its answers validate."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from offline_harness import output_schema, step_messages

from agentmesh.core.messages import render_step_input, tool_result
from agentmesh.core.schemas import OUTPUT_TOOLS
from agentmesh.models.offline import respond
from agentmesh.plugins.operations.offline import OperationsRules
from agentmesh.tools import ToolRegistry

RULES = OperationsRules()

TOOLS = [t.openai_schema() for t in ToolRegistry.load()]
WORDS = ["checkout-api", "p95", "under", "300", "ms", "cut", "cost", "by", "30%", "dataset", "customers", "clean",
         "duplicates", "ticket", "T-1002", "refund", "$50", "urgent", "what", "is", "how", "report", "don't",
         "change", "anything", "without", "doubling", "scale", "slow", "errors", "orders.csv", "escalate"]
goals = st.one_of(st.text(max_size=300), st.lists(st.sampled_from(WORDS), max_size=25).map(" ".join))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["p95_ms", "replicas", "cpu_pct", "services", "tickets", "id", "name", "priority",
                         "suggested_operations", "requested_refund_usd", "simulated", "customer_message", "x"]),
        inner, max_size=5),
    max_leaves=20,
)
statuses = st.sampled_from(["ok", "refused", "failed", "invalid", "rejected"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(goal=goals, name=st.sampled_from(sorted(OUTPUT_TOOLS)), round_no=st.integers(1, 3))
def test_strategist_outputs_always_validate(goal: str, name: str, round_no: int) -> None:
    text = render_step_input(goal=goal, plan={"objective": "x", "steps": [{"id": "s1"}]},
                             findings=[{"step_id": "s1", "agent": "analyst", "summary": goal or "-"}],
                             actions=[{"tool": "scale_service", "args": {"r": 1}, "status": "failed"}],
                             round_info=(round_no, 3))
    message = respond([SystemMessage("You are the strategist."), HumanMessage(text)], [output_schema(name)],
                      name, "offline", RULES)
    assert message.tool_calls[0]["name"] == name
    OUTPUT_TOOLS[name].model_validate(message.tool_calls[0]["args"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(goal=goals, role=st.sampled_from(["analyst", "optimizer", "innovator", "", "someone"]),
       results=st.lists(st.tuples(statuses, json_values, st.text(max_size=80)), max_size=14))
def test_worker_steps_never_raise_always_end_and_their_findings_validate(
    goal: str, role: str, results: list[tuple[str, Any, str]]
) -> None:
    messages = step_messages(goal, role=role, instruction=goal[:100] or "do it")
    tools = TOOLS + [output_schema("submit_finding")]
    feed = iter(results)
    for _ in range(20):
        message = respond(messages, tools, "auto", "offline", RULES)
        call = message.tool_calls[0]
        if call["name"] == "submit_finding":
            OUTPUT_TOOLS["submit_finding"].model_validate(call["args"])
            return
        assert call["name"] in {t["function"]["name"] for t in TOOLS}
        status, value, error = next(feed, ("ok", {}, ""))
        content = tool_result(status, result=value, error=error)
        json.loads(content)
        messages += [message, ToolMessage(content, tool_call_id=call["id"])]
        assert isinstance(message, AIMessage)
    raise AssertionError("the step never ended")
