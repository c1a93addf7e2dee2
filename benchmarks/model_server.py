"""A local OpenAI-protocol model for the benchmarks, in a process of its own so its work does not share the
benchmark's interpreter (and GIL): ``python benchmarks/model_server.py --latency 0.2 [--token-delay 0.01]``.

It prints its base URL on the first stdout line and serves until stdin closes. Requests that offer tools are
answered by the offline model's rules (``agentmesh.testing.offline_responder``); requests without tools get a
short text reply. Every reply waits exactly ``--latency`` seconds first, so model time is known.

``--responder peers`` plays the peer benchmark's script instead (``benchmarks/peers/workload.py``: three tool
calls, then the answer). Lines on stdin are commands, each answered with one JSON line on stdout:
``latency SECONDS`` changes the latency of every later reply; ``stats`` returns, per run tag, the requests
answered and any problem seen since the last ``stats`` (the peers script only).
"""

from __future__ import annotations

import argparse
import json
import socketserver
import sys
from pathlib import Path
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
    parser.add_argument("--responder", choices=["offline", "peers"], default="offline")
    args = parser.parse_args()
    from agentmesh.testing import OpenAIServer

    # The standard library's listen backlog is 5: 16 or 32 clients connecting at once overflow it, and a
    # refused or dropped connection is an error or a 1 s SYN retry in the client, not the framework's cost.
    socketserver.TCPServer.request_queue_size = 256
    script: Any = None
    if args.responder == "peers":
        sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
        from workload import Script

        script = script_responder = Script()
    else:
        script_responder = respond
    script_responder(
        {
            "tools": [{"type": "function", "function": {"name": "submit_finding", "parameters": {}}}],
            "messages": [{"role": "user", "content": "warm up"}],
        }
    )
    if script is not None:
        script.take()
    with OpenAIServer(responder=script_responder, latency_s=args.latency, token_delay_s=args.token_delay) as server:
        print(server.base_url, flush=True)
        for line in sys.stdin:
            command, _, value = line.strip().partition(" ")
            if command == "latency":
                server.latency_s = float(value)
                print(json.dumps({"latency_s": server.latency_s}), flush=True)
            elif command == "stats":
                print(json.dumps(script.take() if script is not None else {}), flush=True)


if __name__ == "__main__":
    main()
