"""Test models whose behaviour depends on the optimizer's prompt text or settings, and suites generated for them.

``PromptSensitiveModel`` plays the offline model, except for the optimizer:
- without an instruction to escalate refunds above the cap, it never escalates: where the offline model would
  call ``escalate_ticket`` it reports instead (the failure an evolution should fix);
- with "escalate every refund request" in its prompt (a harmful instruction), it escalates every ticket,
  including refunds it should simply pay.

``ToolHappyModel`` plays the offline model, except that the optimizer pages the operations team after every
escalation whenever it is offered ``notify_operations`` (the above-cap scenarios forbid that): taking the tool
out of its tool subset helps, a prompt instruction does not.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agentmesh.models.offline import OfflineChatModel
from agentmesh.models.offline import respond as offline_respond
from agentmesh.plugins.operations.offline import OperationsRules
from agentmesh.testing.scripted import reply

RULES = OperationsRules()

GOOD = re.compile(r"(?is)escalate a ticket with `escalate_ticket`.*above the refund cap")
HARMFUL_INSTRUCTION = "Escalate every refund request to a person; never resolve a refund yourself."
HARMFUL = re.compile(r"(?i)escalate every refund request")


def optimizer_behaviour(system: str) -> str:
    if HARMFUL.search(system):
        return "escalate_all"
    return "escalate_above_cap" if GOOD.search(system) else "never_escalate"


class PromptSensitiveModel(OfflineChatModel):
    model_name: str = "prompt-sensitive"

    @property
    def _llm_type(self) -> str:
        return "prompt-sensitive"

    def _reply(self, messages: list[BaseMessage], tools: Any, tool_choice: Any) -> AIMessage:
        message = offline_respond(messages, tools or [], tool_choice, self.model_name, RULES)
        system = next((str(m.content) for m in messages if isinstance(m, SystemMessage)), "")
        if "You are the **optimizer**" not in system:
            return message
        mode = optimizer_behaviour(system)
        calls = message.tool_calls
        if mode == "never_escalate" and any(c["name"] == "escalate_ticket" for c in calls):
            return reply(tool="submit_finding", args={"summary": "Left the refund request for later.", "confidence": 0.5})
        if mode == "escalate_all" and any(c["name"] == "resolve_ticket" for c in calls):
            return reply(calls=[("escalate_ticket", {"ticket_id": c["args"]["ticket_id"], "reason": "every refund goes to a person"})
                                if c["name"] == "resolve_ticket" else (c["name"], c["args"]) for c in calls])
        return message

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, *, tools: Any = None,
                  tool_choice: Any = None, **kwargs: Any) -> ChatResult:
        message = self._reply(messages, tools, tool_choice)
        message = message.model_copy(update={"usage_metadata": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
                                             "response_metadata": {"model_name": self.model_name}})
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, *,
                         tools: Any = None, tool_choice: Any = None, **kwargs: Any) -> ChatResult:
        return self._generate(messages, tools=tools, tool_choice=tool_choice)


class ToolHappyModel(PromptSensitiveModel):
    model_name: str = "tool-happy"

    def _reply(self, messages: list[BaseMessage], tools: Any, tool_choice: Any) -> AIMessage:
        message = offline_respond(messages, tools or [], tool_choice, self.model_name, RULES)
        system = next((str(m.content) for m in messages if isinstance(m, SystemMessage)), "")
        offered = {t["function"]["name"] for t in tools or []}
        made = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
        finishing = any(c["name"] == "submit_finding" for c in message.tool_calls)
        if ("You are the **optimizer**" in system and finishing and "notify_operations" in offered
                and any(c["name"] == "escalate_ticket" for c in made)
                and not any(c["name"] == "notify_operations" for c in made)):
            return reply(tool="notify_operations", args={"message": "Escalated a refund request.", "severity": "info"})
        return message


CUSTOMERS = ["C00001", "C00002", "C00003", "C00004", "C00005", "C00006", "C00007", "C00008"]


def write_suite(folder: Path, *, above: list[str], within: list[str]) -> None:
    """Scenarios of one new ticket each: a refund above the cap (must be escalated) or within it (must be paid)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, sid in enumerate(above):
        ticket, amount = f"T-31{i:02d}", 400 + 25 * i
        (folder / f"{sid}.yaml").write_text(f"""id: {sid}
purpose: A refund above the cap is escalated, not paid.
tags: [support, refund-cap]
world:
  setup:
    - add_ticket: {{id: {ticket}, customer_id: {CUSTOMERS[i % 8]}, priority: high, subject: "Charged for a cancelled order", body: "I cancelled and was still charged. Please refund the ${amount}.", requested_refund_usd: {amount}}}
    - only_open_tickets: [{ticket}]
goal: "Customer on ticket {ticket} wants ${amount} back for a cancelled order. Please resolve the ticket."
evaluation:
  required_calls:
    - {{tool: escalate_ticket, args: {{ticket_id: {ticket}}}}}
  forbidden_calls:
    - {{tool: resolve_ticket, args: {{ticket_id: {ticket}}}}}
    - {{tool: notify_operations, why: "an escalation is for the support lead, not an operations page"}}
""", encoding="utf-8")
    for i, sid in enumerate(within):
        ticket, amount = f"T-32{i:02d}", 20 + 5 * i
        (folder / f"{sid}.yaml").write_text(f"""id: {sid}
purpose: A small refund within the cap is paid and the ticket resolved.
tags: [support, refund]
world:
  setup:
    - add_ticket: {{id: {ticket}, customer_id: {CUSTOMERS[i % 8]}, priority: high, subject: "Damaged item", body: "The mug arrived chipped. Please refund the ${amount}.", requested_refund_usd: {amount}}}
    - only_open_tickets: [{ticket}]
goal: "Customer on ticket {ticket} wants ${amount} back for a damaged item. Please resolve the ticket."
evaluation:
  required_calls:
    - {{tool: resolve_ticket, args: {{ticket_id: {ticket}, refund_usd: {amount}}}}}
  forbidden_calls:
    - {{tool: escalate_ticket, args: {{ticket_id: {ticket}}}}}
""", encoding="utf-8")


def write_paging_scenario(folder: Path, sid: str) -> None:
    """A refund the team pays and also reports to operations, which the goal does not ask for: the offline model
    never notifies unasked, so it fails this scenario whatever its prompt says."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{sid}.yaml").write_text(f"""id: {sid}
purpose: Every refund is reported to operations (a house rule the goal does not state).
tags: [support, refund]
world:
  setup:
    - add_ticket: {{id: T-3300, customer_id: C00001, priority: high, subject: "Damaged item", body: "Please refund the $30.", requested_refund_usd: 30}}
    - only_open_tickets: [T-3300]
goal: "Customer on ticket T-3300 wants $30 back for a damaged item. Please resolve the ticket."
evaluation:
  required_calls:
    - {{tool: resolve_ticket, args: {{ticket_id: T-3300, refund_usd: 30}}}}
    - {{tool: notify_operations}}
""", encoding="utf-8")
