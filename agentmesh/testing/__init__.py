"""Test seams shipped with agentmesh, for its own tests, benchmarks and users' tests.

``OpenAIServer`` is a real local OpenAI-protocol HTTP server that answers from a script (replies and
faults) or a responder function.
"""

from __future__ import annotations

from agentmesh.testing.openai_server import (
    OpenAIServer,
    Reply,
    ToolCall,
    cut,
    empty,
    error,
    huge,
    slow,
    text,
    tool_call,
)

__all__ = ["OpenAIServer", "Reply", "ToolCall", "cut", "empty", "error", "huge", "slow", "text", "tool_call"]
