"""A local OpenAI-protocol model for the benchmarks, in a process of its own so its work does not share the
benchmark's interpreter (and GIL): ``python benchmarks/model_server.py --latency 0.2 [--token-delay 0.01]``.

It prints its base URL on the first stdout line and serves until stdin closes. Requests that offer tools are
answered by the offline model's rules (``agentmesh.testing.offline_responder``); requests without tools get a
short text reply. Every reply waits exactly ``--latency`` seconds first, so model time is known.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def respond(request: dict[str, Any]) -> Any:
    if request.get("tools"):
        from agentmesh.testing.offline_responder import offline_responder

        return offline_responder(request)
    from agentmesh.testing import text

    return text("ok: " + "token " * 15, prompt_tokens=20, completion_tokens=16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every reply")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between streamed chunks")
    args = parser.parse_args()
    from agentmesh.testing import OpenAIServer

    respond(
        {
            "tools": [{"type": "function", "function": {"name": "submit_finding", "parameters": {}}}],
            "messages": [{"role": "user", "content": "warm up"}],
        }
    )
    with OpenAIServer(responder=respond, latency_s=args.latency, token_delay_s=args.token_delay) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
