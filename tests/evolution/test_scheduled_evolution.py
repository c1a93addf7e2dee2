"""The nightly evolution as a Prefect deployment on a real `prefect server start`: `agentmesh evolve --schedule`
deploys it, `agentmesh deploy run` starts a run through the server, `agentmesh deploy --serve` executes it, and the
round is recorded in the agentmesh database with the flow run's id, an HTML report and a Prefect artifact."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from prompt_sensitive import write_paging_scenario, write_suite

sys.path.insert(0, str(Path(__file__).parents[1] / "durability"))
from durability_helpers import AGENTMESH, loads, query, run_cli, stop, wait_for  # noqa: E402
from test_schedules import prefect_server  # noqa: E402, F401  (the fixture: a real `prefect server start`)


def test_scheduled_evolution_runs_through_the_server_and_records_its_round(home, tmp_path, prefect_server):  # type: ignore[no-untyped-def]  # noqa: F811
    env = {**prefect_server, "AGENTMESH_HOME": str(home)}
    suite = tmp_path / "suite"
    write_paging_scenario(suite, "refund-paged-0")
    write_suite(suite, above=[], within=["refund-small-0", "refund-small-2"])

    bad = run_cli("evolve", "--suite", str(suite), "--schedule", "every night", env=env)
    assert bad.returncode == 2 and "not a cron expression" in bad.stderr and "Traceback" not in bad.stderr
    made = run_cli("evolve", "--suite", str(suite), "--agent", "optimizer", "--candidates", "1", "--held-out", "0.2",
                   "--schedule", "0 3 * * *", "--name", "nightly-evolve", env=env)
    assert made.returncode == 0, made.stderr
    listing = run_cli("deploy", "list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    listed = {d["name"]: d for d in loads(listing.stdout)}
    nightly = listed["nightly-evolve"]
    assert (nightly["flow"], nightly["cron"]) == ("agentmesh-evolve", "0 3 * * *")
    assert nightly["parameters"]["options"]["role"] == "optimizer"

    started = run_cli("deploy", "run", "nightly-evolve", env=env)
    assert started.returncode == 0, started.stderr
    flow_run_id = re.search(r"started flow run ([0-9a-f-]{36})", started.stdout).group(1)  # type: ignore[union-attr]
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "serve.log", "wb") as log:  # the child keeps its own copy of the descriptor
        serving = subprocess.Popen([*AGENTMESH, "deploy", "--serve", "nightly-evolve", "--limit", "1"], env=env,
                                   stdout=log, stderr=log, start_new_session=True)
    api = prefect_server["PREFECT_API_URL"]

    def finished() -> str | None:
        state = httpx.get(f"{api}/flow_runs/{flow_run_id}").json()["state"]["type"]
        return state if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    try:
        state = wait_for(finished, timeout=300, what="the evolution flow run", log=home / "serve.log")
    finally:
        stop(serving)
    assert state == "COMPLETED", (home / "serve.log").read_text(errors="replace")[-3000:]
    (row,) = query(home, "SELECT round_id, role, decision, flow_run_id, html_path FROM evolution_rounds")
    # The round ran as the deployment's flow run and kept the current prompt: the offline model ignores prompts,
    # so the candidate had no evidence.
    assert row.flow_run_id == flow_run_id and row.role == "optimizer" and row.decision == "kept"
    html = Path(row.html_path).read_text(encoding="utf-8")
    assert "refund-paged-0" in html and "rejected" in html and "sign test" in html
    events = query(home, "SELECT action, version FROM prompt_events WHERE role = 'optimizer' ORDER BY id")
    assert [e.action for e in events] == ["import", "propose", "reject"]

    artifacts = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).json()
    assert any(a["key"] == "evolution-optimizer" and "kept" in a["data"] for a in artifacts)
