"""Helpers of the distributed tests (processes standing in for machines)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and its children (it was started in a new session): SIGINT, then SIGKILL."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue
