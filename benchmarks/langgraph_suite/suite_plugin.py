"""pytest plugin loaded in both runs of ``run.py`` (``-p suite_plugin``): selects the tests and records them.

Selection: LangGraph's conftest runs most tests once per checkpointer (with ``NO_DOCKER=true``: memory, sqlite,
sqlite_aes for sync tests; memory, sqlite_aio for async ones — all in-process). ``LGSUITE_CHECKPOINTERS``
(comma-separated ids; default ``memory``; ``all`` keeps every one) deselects the other parametrizations: the
checkpointer is LangGraph's, not agentmesh's, so the copies re-test the same agentmesh behaviour at ~1 s a test.

Recording: the file named by ``LGSUITE_OUTCOMES`` gets
``{"tests": {nodeid: {"outcome", "duration", "crash", "text"}}, "wall_s": ...}``. Under xdist the controller
receives every worker's reports, so only it writes.

Outcomes: passed, failed (the test body failed), error (setup or teardown failed, or the module did not
collect), skipped (a module skipped at collection counts once, as in pytest's summary), xfailed, xpassed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

_HEAD, _TAIL = 3000, 9000  # failure text kept: its start (the assertion) and its end (the innermost frames)
_tests: dict[str, dict[str, Any]] = {}
_started = time.monotonic()


def _text(report: pytest.TestReport | pytest.CollectReport) -> str:
    text = str(report.longrepr) if report.longrepr is not None else ""
    if len(text) > _HEAD + _TAIL:
        text = text[:_HEAD] + "\n[... cut ...]\n" + text[-_TAIL:]
    return text


def _crash(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return f"{crash.path}:{crash.lineno}: {crash.message}"
    if isinstance(report.longrepr, tuple):  # a skip: (path, lineno, reason)
        return str(report.longrepr[2])
    lines = str(report.longrepr or "").strip().splitlines()
    return lines[-1] if lines else ""


_CHECKPOINTER_FIXTURES = ("sync_checkpointer", "async_checkpointer")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = os.environ.get("LGSUITE_CHECKPOINTERS", "memory").strip()
    if wanted == "all":
        return
    keep_ids = {name.strip() for name in wanted.split(",") if name.strip()}
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        ids = [params[name] for name in _CHECKPOINTER_FIXTURES if name in params]
        (kept if all(i in keep_ids for i in ids) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _tests.setdefault(report.nodeid, {"outcome": None, "duration": 0.0, "crash": "", "text": ""})
    entry["duration"] = round(entry["duration"] + report.duration, 4)
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed" if report.passed else None
        if outcome:
            entry["outcome"] = outcome
        return
    if report.when == "call":
        entry["outcome"] = report.outcome
    elif report.failed:  # setup or teardown
        entry["outcome"] = "error" if entry["outcome"] in (None, "passed") else entry["outcome"]
    elif report.skipped and report.when == "setup":
        entry["outcome"] = "skipped"
    if report.failed or report.skipped:
        if not entry["crash"]:
            entry["crash"] = _crash(report)
            entry["text"] = _text(report) if report.failed else ""
        if report.failed:
            entry["when"] = report.when


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module skipped or broken at collection counts once, as pytest's summary counts it."""
    if report.skipped or report.failed:
        _tests[report.nodeid] = {"outcome": "skipped" if report.skipped else "error", "duration": 0.0,
                                 "crash": _crash(report), "text": _text(report) if report.failed else "",
                                 "when": "collect"}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return
    path = os.environ.get("LGSUITE_OUTCOMES")
    if not path:
        return
    with open(path, "w") as f:
        json.dump({"wall_s": round(time.monotonic() - _started, 2), "exitstatus": int(exitstatus),
                   "tests": _tests}, f)
