"""The Prefect UI a user opens, out of the box: `agentmesh run` (over the real langchain-openai HTTP path, to a local
OpenAI-protocol server) prints its flow run's link; the flow run is named for the goal and tagged; its Logs tab tells
what the agents did (model calls with tokens and cost, tool calls with status) and never the API key; headless
Chromium opens `agentmesh prefect status`'s ui_url, finds the flow run by its name, opens it and sees one task run
per executed node and the logs. Screenshots: tests/interfaces/artifacts/prefect-*.png."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_harness import ARTIFACTS

from agentmesh.runtime.goal import goal_slug
from agentmesh.testing.offline_responder import offline_responder
from agentmesh.testing.openai_server import OpenAIServer

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AGENTMESH = Path(sys.executable).parent / "agentmesh"
GOAL = "checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"
KEY = "sk-test-prefect-ui-0123456789abcdef"


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def agentmesh(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AGENTMESH), *args], capture_output=True, text=True, timeout=600,
                          env={**_unset(os.environ, "PREFECT_API_URL", "AGENTMESH_LOCAL_PREFECT"), **env})


def _unset(env: Mapping[str, str], *names: str) -> dict[str, str]:
    """The environment without what an in-process goal of an earlier test in this worker exported (its Prefect
    API URL): the CLI finds its home's local server itself, as a user's shell would."""
    return {k: v for k, v in env.items() if k not in names}


def test_a_goal_s_flow_run_is_named_tagged_logged_and_opens_in_the_prefect_ui(home: Path, browser) -> None:  # type: ignore[no-untyped-def]
    from agentmesh.runtime.prefect import ensure_local_server

    # The session's local server (a fresh Prefect database migrates for minutes on a loaded machine: started here,
    # with time to spare, rather than inside the CLI's own wait).
    ensure_local_server(Path(os.environ["PREFECT_HOME"]), wait_s=900)
    with OpenAIServer(responder=offline_responder, api_key=KEY) as model:
        done = agentmesh("run", GOAL, "--approvals", "auto", OPENAI_BASE_URL=model.base_url, OPENAI_API_KEY=KEY,
                         AGENTMESH_MODEL="gpt-4o-mini")
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r"Prefect flow run: (http://127\.0\.0\.1:\d+/runs/flow-run/([0-9a-f-]{36}))", done.stdout)
    assert found, f"`agentmesh run` prints the flow run's link:\n{done.stdout}"
    link, run_id = found.groups()

    shown = json.loads(agentmesh("runs", "show", run_id, "--json").stdout)
    assert shown["flow_run_url"] == link and shown["status"] == "done"
    assert shown["trace_id"] is None, "no trace without OpenTelemetry configured"
    status = json.loads(agentmesh("prefect", "status", "--json").stdout)
    assert status["running"] and link == f"{status['ui_url']}/runs/flow-run/{run_id}"
    assert status["ui_url"] == status["api_url"].removesuffix("/api")

    with httpx.Client(base_url=status["api_url"], timeout=30) as api:
        flow_run = api.get(f"/flow_runs/{run_id}").json()
        name = flow_run["name"]
        assert name == f"{goal_slug(GOAL)}-{run_id[:8]}" and name.startswith("checkout-api-p95-latency-is-900-ms")
        assert {"agentmesh", "graph:mesh", "model:gpt-4o-mini"} <= set(flow_run["tags"])
        # The server records task runs from their events, in batches: on a loaded machine a moment after the run.
        deadline = time.monotonic() + 60
        while True:
            task_runs = api.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [run_id]}}}).json()
            if len(task_runs) >= len(shown["steps"]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert sorted(t["name"].rsplit("-", 1)[0] for t in task_runs) == sorted(s["node"] for s in shown["steps"])
        logs = _logs(api, run_id, expect=shown["usage"]["model_calls"])
    messages = [entry["message"] for entry in logs]
    chats = [m for m in messages if " · chat gpt-4o-mini · " in m]
    assert len(chats) == shown["usage"]["model_calls"], messages
    assert all(re.search(r"\d+ in / \d+ out tokens · \$0\.\d{4} · \d+\.\d\d s", m) for m in chats)
    calls = [c for s in shown["steps"] for c in s["tool_calls"]]
    assert calls, "the goal's agents called tools"
    for call in calls:
        assert any(m.startswith(f"{call['agent']} → {call['tool']}: {call['status']}") for m in messages), call
    assert any(m.startswith("run done · ") for m in messages)
    assert not [m for m in messages if KEY in m or KEY[-8:] in m], "the API key never reaches the logs"

    _browse(browser, status["ui_url"], name, run_id, [s["node"] for s in shown["steps"]])


def _logs(api: httpx.Client, run_id: str, *, expect: int) -> list[dict[str, Any]]:
    """The flow run's logs (the log worker sends them in batches: the last may arrive after the process ends)."""
    import time

    query = {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC", "limit": 200}
    for _ in range(60):
        logs = api.post("/logs/filter", json=query).json()
        if sum(" · chat " in entry["message"] for entry in logs) >= expect and any(
                entry["message"].startswith("run done") for entry in logs):
            return logs
        time.sleep(0.5)
    return logs


def _browse(browser: Any, ui_url: str, name: str, run_id: str, nodes: list[str]) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(exist_ok=True)
    wait = WebDriverWait(browser, 120, ignored_exceptions=[StaleElementReferenceException])
    try:
        browser.get(ui_url)
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "a[href='/runs']"))).click()
        # The page has two such boxes, one per layout; the visible one is the one to type in.
        search = wait.until(lambda d: next((e for e in d.find_elements(
            By.CSS_SELECTOR, "input[placeholder='Search by flow run name']") if e.is_displayed()), False))
        search.send_keys(name)
        wait.until(ec.element_to_be_clickable((By.LINK_TEXT, name)))
        browser.save_screenshot(str(ARTIFACTS / "prefect-runs.png"))
        browser.find_element(By.LINK_TEXT, name).click()
        wait.until(ec.url_contains(f"/runs/flow-run/{run_id}"))
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), " · chat gpt-4o-mini · "))
        assert f"{len(nodes)} Task runs" in browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(ARTIFACTS / "prefect-flow-run-logs.png"))
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "li.p-tab#task-runs"))).click()

        def task_runs(d: Any) -> list[str] | bool:
            shown = [a.text for a in d.find_elements(By.CSS_SELECTOR, "a[href*='/runs/task-run/']") if a.text]
            return shown if len(shown) >= len(nodes) else False

        shown = wait.until(task_runs)
        assert sorted(t.rsplit("-", 1)[0] for t in shown) == sorted(nodes), shown
        browser.save_screenshot(str(ARTIFACTS / "prefect-flow-run-task-runs.png"))
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / "prefect-failure.png"))
        raise
