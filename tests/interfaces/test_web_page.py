"""The web page in headless Chromium (Debian's chromium + chromedriver, driven by Selenium): submit a goal,
see live events, approve the pending call, see the decision; screenshots go to tests/interfaces/artifacts/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serve_harness import ARTIFACTS, Server

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


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


def test_submit_watch_approve_and_see_the_decision(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    try:
        decision = _submit_watch_approve_and_see_the_decision(server, browser)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "web-failure.png"))
        with server.client() as client:
            runs = client.get("/v1/runs").json()["data"]
        print("runs on the server:", runs, "\nserver log:\n", server.log.read_text()[-3000:])
        raise
    assert "Actions taken" in decision and "scale_service" in decision


def _submit_watch_approve_and_see_the_decision(server: Server, browser) -> str:  # type: ignore[no-untyped-def]
    """Submit, watch, approve, see the decision and the audit; the decision's text as shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(exist_ok=True)
    from selenium.common.exceptions import StaleElementReferenceException

    # The page re-renders parts of itself as events arrive: a lookup that goes stale is simply retried.
    wait = WebDriverWait(browser, 180, ignored_exceptions=[StaleElementReferenceException])
    browser.get(server.url + "/")
    # The server wants a token: the page asks for it and keeps it in the browser.
    wait.until(ec.visibility_of_element_located((By.ID, "token-input"))).send_keys(server.token)
    browser.find_element(By.CSS_SELECTOR, "#token-form button[value=save]").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#graph-select option[value=mesh]")))

    goal = "checkout-api p95 is at 900 ms, keep it under 300 ms without doubling cost"
    browser.find_element(By.ID, "goal-input").send_keys(goal)
    browser.find_element(By.ID, "submit-goal").click()

    wait.until(ec.text_to_be_present_in_element((By.ID, "run-goal"), goal))
    assert browser.find_element(By.ID, "run-graph").text == "graph mesh", "the server's default graph is preselected"
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#timeline .event[data-type=tool_call]")))
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".approval button.approve")))
    wait.until(ec.text_to_be_present_in_element((By.ID, "run-status"), "waiting approval"))
    assert "scale_service" in browser.find_element(By.ID, "approvals").text
    browser.save_screenshot(str(ARTIFACTS / "web-waiting-approval.png"))
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".approval button.approve").click() or True)

    wait.until(ec.text_to_be_present_in_element((By.ID, "run-status"), "done"))
    decision = wait.until(ec.visibility_of_element_located((By.ID, "decision")))
    shown = decision.text
    assert "scale_service" in shown and "Actions taken" in shown
    types = browser.execute_script(
        "return [...document.querySelectorAll('#timeline .event')].map((e) => e.dataset.type)")
    assert types.count("run_started") == 2, "the timeline followed the run live through its resume"
    assert types[-1] == "run_finished"
    browser.save_screenshot(str(ARTIFACTS / "web-decision.png"))

    browser.find_element(By.CSS_SELECTOR, ".tab[data-tab=audit]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "audit-body"), "approved"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "audit-body"), "scale_service"))
    wait.until(lambda d: goal in d.find_element(By.CSS_SELECTOR, "#runs li[data-run]").text)
    browser.save_screenshot(str(ARTIFACTS / "web-audit.png"))
    return str(shown)


def test_approve_with_edited_arguments_on_the_page(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    """The pending call's arguments are editable: invalid JSON is said and nothing is sent; edited arguments are
    approved, checked by the server and shown in the timeline and the audit."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 180, ignored_exceptions=[StaleElementReferenceException])
    browser.get(server.url + "/")
    token = browser.find_elements(By.ID, "token-input")
    if token and token[0].is_displayed():
        token[0].send_keys(server.token)
        browser.find_element(By.CSS_SELECTOR, "#token-form button[value=save]").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#graph-select option[value=tool_call]")))
    Select(browser.find_element(By.ID, "graph-select")).select_by_value("tool_call")
    goal = 'Call scale_service as optimizer with {"service": "checkout-api", "replicas": 8}'
    browser.find_element(By.ID, "goal-input").send_keys(goal)
    browser.find_element(By.ID, "submit-goal").click()

    edit = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".approval textarea.approval-args")))
    assert '"replicas": 8' in edit.get_attribute("value")
    edit.clear()
    edit.send_keys('{"service": "checkout-api", "replicas": 5')  # not JSON: said on the page, nothing sent
    browser.find_element(By.CSS_SELECTOR, ".approval button.approve").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "run-error"), "not JSON"))
    assert "waiting approval" in browser.find_element(By.ID, "run-status").text
    edit.send_keys("}")
    approve = browser.find_element(By.CSS_SELECTOR, ".approval button.approve")
    assert approve.text == "Approve edited"
    approve.click()

    wait.until(ec.text_to_be_present_in_element((By.ID, "run-status"), "done"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "timeline"), "edited by api"))
    browser.find_element(By.CSS_SELECTOR, ".tab[data-tab=audit]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "audit-body"), "edited by api"))
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "web-edited-approval.png"))
    with server.client() as client:
        run_id = client.get("/v1/runs", params={"limit": 1}).json()["data"][0]["run_id"]
        (call,) = client.get(f"/v1/runs/{run_id}/audit").json()["data"]
    assert (call["args"]["replicas"], call["edited_args"]["replicas"], call["status"]) == (8, 5, "ok")
