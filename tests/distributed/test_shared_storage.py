"""Dataset versions travel: two "machines" (agentmesh processes in different working folders, each with its own
home, one PostgreSQL database) share the sample world's datasets through ``AGENTMESH_STORAGE_URL=s3://…`` on a
real S3-compatible server started here (moto's), and a storage URL that cannot work is a one-line error, exit 2.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request

AGENTMESH = [sys.executable, "-m", "agentmesh"]
BUCKET = "agentmesh-shared"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server on a free loopback port, and the AWS variables that point s3fs at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "agentmesh-test", "AWS_SECRET_ACCESS_KEY": "agentmesh-test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    try:
        yield env
    finally:
        server.stop()


def _s3(env: dict[str, str]) -> Any:
    import s3fs

    return s3fs.S3FileSystem(key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"],
                             endpoint_url=env["AWS_ENDPOINT_URL"], skip_instance_cache=True)


def _machine(tmp_path: Path, name: str, extra: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A working folder and an agentmesh home of its own (the Prefect server is the test session's)."""
    folder = tmp_path / name
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "AGENTMESH_STORAGE_URL"}
    return folder, {**env, **extra, "AGENTMESH_HOME": str(tmp_path / f"{name}-home"), "AGENTMESH_MODEL": "offline"}


def _local_data(*folders: Path) -> list[Path]:
    return [p for f in folders for p in f.rglob("*") if p.suffix in (".csv", ".parquet")]


def _run(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENTMESH, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def _cleans(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for s in result["steps"] for c in s.get("tool_calls", []) if c["tool"] == "clean_dataset"]


def test_a_dataset_version_written_on_one_machine_is_read_on_another(tmp_path: Path, s3_server: dict[str, str],
                                                                      postgres_url: str) -> None:
    s3 = _s3(s3_server)
    s3.mkdir(BUCKET)
    shared = {**s3_server, "AGENTMESH_DATABASE_URL": postgres_url, "AGENTMESH_STORAGE_URL": f"s3://{BUCKET}/team"}
    folder_a, env_a = _machine(tmp_path, "machine-a", shared)
    folder_b, env_b = _machine(tmp_path, "machine-b", shared)

    # Machine A removes the duplicates only; machine B does the rest of the cleaning, on A's version.
    first = _run(folder_a, env_a, "run", "Remove the duplicate rows from the customers dataset", "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    result_a = json.loads(first.stdout)
    assert result_a["status"] == "done"
    (clean_a,) = _cleans(result_a)
    assert clean_a["status"] == "ok" and clean_a["result"]["version"] == 2
    written = f"{BUCKET}/team/{clean_a['result']['file']}"
    assert s3.exists(written), s3.find(f"{BUCKET}/team")
    assert not _local_data(tmp_path), "the version went to the shared storage, not a working folder or home"

    second = _run(folder_b, env_b, "run", "Can you clean up the customers dataset? Blank emails, odd ages", "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    result_b = json.loads(second.stdout)
    assert result_b["status"] == "done"
    (clean_b,) = _cleans(result_b)
    assert clean_b["status"] == "ok", clean_b
    # Machine B cleaned the version machine A wrote (read from S3), into the next one.
    assert (clean_b["result"]["parent_version"], clean_b["result"]["version"]) == (2, 3)
    assert clean_b["result"]["rows_before"] == clean_a["result"]["rows_after"]
    assert s3.exists(f"{BUCKET}/team/{clean_b['result']['file']}")
    assert not _local_data(tmp_path)
    assert not [p for p in s3.find(f"{BUCKET}/team") if ".staging-" in p]


@pytest.mark.parametrize(("url", "says"), [
    ("nosuchfs://bucket/data", "unknown storage 'nosuchfs'"),
    ("s3://", "give a folder, s3://bucket/prefix"),
    ("gcs://bucket/data", "needs a package that is not installed"),
    ("s3:/bucket/data", "looks like a URL missing a slash: write s3://"),  # not a folder named "s3:" in the home
])
def test_a_bad_storage_url_is_one_line_exit_2(tmp_path: Path, url: str, says: str) -> None:
    folder, env = _machine(tmp_path, "machine", {"AGENTMESH_STORAGE_URL": url})
    done = _run(folder, env, "world", "show")
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "AGENTMESH_STORAGE_URL" not in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_s3_without_s3fs_says_which_extra_to_install(tmp_path: Path) -> None:
    """Where s3fs is missing (a Python path that hides it), the message names the extra."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "s3fs.py").write_text("raise ImportError('No module named s3fs')\n")
    folder, env = _machine(tmp_path, "machine", {"AGENTMESH_STORAGE_URL": "s3://bucket/data",
                                                 "PYTHONPATH": str(hide)})
    done = _run(folder, env, "world", "show")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().endswith("pip install 'agentmesh[s3]'")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_relative_storage_folder_is_under_the_home_whatever_the_working_folder(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from agentmesh.core.settings import Settings
    from agentmesh.plugins.operations.world import World

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    world = World.open(Settings(home=tmp_path / "home", storage_url="shared-data", model="offline"))
    stored = tmp_path / "home" / "shared-data" / world.dataset_file("customers")
    assert stored.is_file() and stored.name == "v1.csv"
    assert not _local_data(elsewhere)
