"""LangGraph's own test suite, run plainly and with every StateGraph compiled through ``agentmesh.compile``.

    .venv/bin/python benchmarks/langgraph_suite/run.py            # `make langgraph-suite`
    .venv/bin/python benchmarks/langgraph_suite/run.py --render   # rewrite the results from the last run's outcomes
    .venv/bin/python benchmarks/langgraph_suite/run.py -k subgraph --only compile   # a slice, while fixing

The tests are those of the langgraph release installed in the project's venv (the interpreter running this
script): the PyPI sdist ``langgraph-X.tar.gz`` ships ``tests/``. The script downloads it with pip into
``.cache/langgraph-suite/`` (gitignored; LangGraph's code is never committed here), extracts ``tests/`` and
``pyproject.toml`` only (so ``import langgraph`` is the installed package, not the sdist's copy), and builds a
venv of its own there: agentmesh editable plus LangGraph's test dependencies, every package the project venv
also has pinned to the project venv's version (``pip freeze`` as constraints). Then it runs pytest twice in that
folder with ``NO_DOCKER=true`` (LangGraph's switch for the in-process checkpointers, stores and caches only):

- plain: LangGraph's tests as they are;
- through compile: the same tests with ``-p agentmesh_compile_plugin``, which makes every
  ``StateGraph.compile(...)`` return ``agentmesh.compile(builder, ...)``. agentmesh needs a Prefect API: it
  starts its local Prefect server under a temporary ``AGENTMESH_HOME``; this script starts it before the run
  (its start-up is timed apart) and stops it and removes the folder afterwards.

Then the tests that fail only through compile in a load-sensitive way (``causes.LOAD_SENSITIVE``: latency,
completion order) run again through compile one at a time, in a warmed-up process (``LGSUITE_WARMUP``: a small
graph runs through agentmesh first, so the process's first Prefect task run, which costs ~0.3–1 s, is on no
test's clock), to tell a loaded machine from a real difference.

All runs load ``suite_plugin`` (same selection, outcomes written as JSON). Results:
``benchmarks/results/langgraph-suite.json`` and ``.md``: counts each way, wall time each way, and every test
that passes plainly but not through compile, grouped by cause (``causes.py``).

Needs only the package index (pip download / pip install); no Docker, Postgres or Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
CACHE = Path(os.environ.get("LGSUITE_CACHE", REPO / ".cache" / "langgraph-suite"))

# LangGraph's `test` dependency group (its pyproject), less what needs Docker or a dev server (langgraph-cli),
# coverage, watchers and profilers; plus pytest-timeout, so a test that hangs through compile fails instead.
TEST_DEPS = [
    "pytest", "pytest-mock", "pytest-xdist", "pytest-repeat", "pytest-timeout", "syrupy", "httpx", "requests",
    "pycryptodome", "redis", "psycopg[binary]", "psycopg-pool", "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite", "langgraph-checkpoint-postgres", "langgraph-sdk", "langgraph-prebuilt",
]
# LangGraph's addopts are --full-trace --strict-markers --strict-config --durations=5 --snapshot-warn-unused;
# --full-trace only lengthens tracebacks and --durations prints noise, the rest is kept.
ADDOPTS = "--strict-markers --strict-config --snapshot-warn-unused"
RUNS = ("plain", "compile")


def log(message: str) -> None:
    print(f"[langgraph-suite] {message}", flush=True)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def pip(python: str | Path, *args: str) -> None:
    """pip, its output to .cache/langgraph-suite/pip.log (shown when it fails)."""
    logfile = CACHE / "pip.log"
    with open(logfile, "a") as out:
        code = subprocess.run([str(python), "-m", "pip", *args], stdout=out, stderr=subprocess.STDOUT).returncode
    if code:
        sys.stdout.write("".join(logfile.read_text().splitlines(keepends=True)[-30:]))
        raise SystemExit(f"pip {args[0]} failed (exit {code}); see {logfile}")


# -- the tests: the installed release's sdist ----------------------------------------------------------------


def installed_version() -> str:
    return importlib.metadata.version("langgraph")


def fetch_tests(version: str) -> tuple[Path, dict[str, Any]]:
    """The folder holding the release's ``tests/`` (downloaded and extracted once per version)."""
    src = CACHE / "src" / f"langgraph-{version}"
    sdist_dir = CACHE / "sdist"
    sdist = sdist_dir / f"langgraph-{version}.tar.gz"
    if not sdist.exists():
        log(f"downloading the langgraph {version} sdist from the package index")
        sdist_dir.mkdir(parents=True, exist_ok=True)
        pip(sys.executable, "download", f"langgraph=={version}", "--no-deps", "--no-binary", "langgraph",
            "-d", str(sdist_dir))
    if not (src / "tests" / "conftest.py").exists():
        shutil.rmtree(src, ignore_errors=True)
        prefix = f"langgraph-{version}/"
        wanted = (prefix + "tests/", prefix + "pyproject.toml", prefix + "LICENSE")
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(wanted) and (m.isfile() or m.isdir())]
            if not any(m.name.startswith(prefix + "tests/") for m in members):
                raise SystemExit(f"{sdist.name} has no tests/ folder: this harness cannot run for {version}")
            tar.extractall(src.parent, members=members, filter="data")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    return src, {"sdist": sdist.name, "sha256": digest, "source": "PyPI sdist (pip download --no-binary langgraph)"}


# -- the suite's venv -----------------------------------------------------------------------------------------


def suite_venv(version: str) -> Path:
    """A venv for the suite: agentmesh editable + the test deps, pinned to the project venv's versions."""
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    frozen = run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True).stdout
    constraints = "".join(line + "\n" for line in frozen.splitlines() if "==" in line and not line.startswith("-"))
    wanted = [f"langgraph=={version}", *TEST_DEPS]
    stamp_text = json.dumps({"constraints": constraints, "deps": wanted,
                             "pyproject": (REPO / "pyproject.toml").read_text()}, sort_keys=True)
    stamp = venv / ".lgsuite-stamp"
    if python.exists() and stamp.exists() and stamp.read_text() == stamp_text:
        return python
    log(f"building the suite venv in {venv} (agentmesh editable + LangGraph's test deps)")
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(venv)])
    (CACHE / "constraints.txt").write_text(constraints)
    pip(python, "install", "-c", str(CACHE / "constraints.txt"), "-e", str(REPO), *wanted)
    stamp.write_text(stamp_text)
    return python


def package_versions(python: Path) -> dict[str, str]:
    names = ["langgraph", "langgraph-checkpoint", "langgraph-prebuilt", "langchain-core", "prefect", "pytest",
             "pytest-xdist", "syrupy"]
    code = ("import json, importlib.metadata as m, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    return json.loads(run([str(python), "-c", code, *names], capture_output=True).stdout)


# -- the two runs ---------------------------------------------------------------------------------------------


def base_env(home: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "AGENTMESH_", "PYTEST_", "LGSUITE_OUTCOMES"))}
    env.update(NO_DOCKER="true", PYTHONPATH=str(HERE), PYTHONDONTWRITEBYTECODE="1")
    if home is not None:
        env.update(AGENTMESH_HOME=str(home), PREFECT_HOME=str(home / "prefect"))
    return env


_START_SERVER = """
from typing_extensions import TypedDict
from langgraph.graph import START, StateGraph
import agentmesh

class State(TypedDict):
    n: int

builder = StateGraph(State)
builder.add_node("step", lambda state: state)
builder.add_edge(START, "step")
try:
    agentmesh.compile(builder)  # configures Prefect: starts agentmesh's local server in this home
except agentmesh.ConfigError:  # not up within 90 s (a loaded machine): wait once more for the same server
    agentmesh.compile(builder)
"""


@contextlib.contextmanager
def agentmesh_home(python: Path):  # type: ignore[no-untyped-def]
    """A temporary AGENTMESH_HOME (Prefect's home inside it) with agentmesh's local Prefect server started in it,
    stopped and removed afterwards. Only agentmesh's public surface is used: ``agentmesh.compile`` starts the
    server, ``agentmesh prefect stop`` stops it."""
    home = Path(tempfile.mkdtemp(prefix="lgsuite-home-"))
    env = base_env(home)
    started = time.monotonic()
    try:
        run([str(python), "-c", _START_SERVER], env=env)
        yield home, round(time.monotonic() - started, 2)
    finally:
        subprocess.run([str(python), "-m", "agentmesh", "prefect", "stop"], env=env, check=False,
                       stdout=subprocess.DEVNULL)
        _kill_leftover_server(home / "prefect")
        shutil.rmtree(home, ignore_errors=True)


def _kill_leftover_server(prefect_home: Path) -> None:
    """If the server outlived ``agentmesh prefect stop`` (its state file still names a live process), end it."""
    import signal

    with contextlib.suppress(OSError, ValueError, KeyError):
        pid = int(json.loads((prefect_home / "agentmesh-server.json").read_text())["pid"])
        if b"prefect_server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return  # not our server (the pid was reused)
        os.kill(pid, signal.SIGTERM)
        log(f"stopped the leftover Prefect server (pid {pid})")


def pytest_run(name: str, python: Path, src: Path, args: argparse.Namespace, home: Path | None,
               nodeids: list[str] | None = None) -> dict[str, Any]:
    outcomes = CACHE / f"outcomes-{name}.json"
    outcomes.unlink(missing_ok=True)
    logfile = CACHE / f"{name}.log"
    cmd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "suite_plugin", "-o",
           f"addopts={ADDOPTS}", f"--timeout={args.timeout}", "-rN"]
    if name in ("compile", "alone"):
        cmd += ["-p", "agentmesh_compile_plugin"]
    if name == "alone":  # the tests that failed only through compile, again, one at a time (no xdist)
        cmd += ["-p", "no:xdist", *(nodeids or [])]
    else:
        if args.workers > 0:
            cmd += ["-n", str(args.workers), "--dist", "worksteal"]
        if args.k:
            cmd += ["-k", args.k]
        cmd += args.paths or ["tests"]
    env = base_env(home)
    env.update(LGSUITE_OUTCOMES=str(outcomes), LGSUITE_CHECKPOINTERS=args.checkpointers,
               LGSUITE_WARMUP="1" if name == "alone" else "0")
    shown = " ".join(cmd[1:]) if name != "alone" else " ".join(cmd[1:-len(nodeids or [])]) + f" <{len(nodeids or [])} node ids>"
    log(f"{name}: {shown}  (log: {logfile})")
    started = time.monotonic()
    with open(logfile, "w") as out:
        code = subprocess.run(cmd, cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    wall = round(time.monotonic() - started, 1)
    tail = logfile.read_text().strip().splitlines()[-1:] if logfile.exists() else []
    log(f"{name}: exit {code} in {wall} s — {tail[0] if tail else '(no output)'}")
    if not outcomes.exists():
        raise SystemExit(f"the {name} run wrote no outcomes (exit {code}); see {logfile}")
    data = json.loads(outcomes.read_text())
    data.update(wall_s=wall, exit_code=code, command=shown, cwd=str(src),
                selection={"checkpointers": args.checkpointers, "k": args.k, "paths": args.paths,
                           "workers": args.workers, "timeout": args.timeout})
    outcomes.write_text(json.dumps(data))
    return data


# -- results --------------------------------------------------------------------------------------------------


def counts(tests: dict[str, Any]) -> dict[str, int]:
    c = Counter(t["outcome"] or "unknown" for t in tests.values())
    return {"selected": len(tests), **{k: c.get(k, 0) for k in
            ("passed", "failed", "error", "skipped", "xfailed", "xpassed")}}


def regressions_of(runs: dict[str, dict[str, Any]]) -> list[str]:
    plain, through = runs["plain"]["tests"], runs["compile"]["tests"]
    return sorted(n for n, t in through.items()
                  if t["outcome"] != "passed" and plain.get(n, {}).get("outcome") == "passed")


def load_sensitive(nodeids: list[str], tests: dict[str, Any], tests_dir: Path) -> list[str]:
    from causes import LOAD_SENSITIVE, classify

    return [n for n in nodeids if classify(n, tests[n], tests_dir).key in LOAD_SENSITIVE]


def analyse(meta: dict[str, Any], runs: dict[str, dict[str, Any]], tests_dir: Path) -> dict[str, Any]:
    from causes import classify, shorten

    plain, through = runs["plain"]["tests"], runs["compile"]["tests"]
    both = plain.keys() & through.keys()  # a slice run through compile is compared on its own tests
    plain = {n: t for n, t in plain.items() if n in both}
    through = {n: t for n, t in through.items() if n in both}
    regressions: dict[str, list[dict[str, Any]]] = {}
    examples: dict[str, dict[str, str]] = {}
    for nodeid, result in sorted(plain.items()):
        if result["outcome"] != "passed":
            continue
        other = through.get(nodeid, {"outcome": "not run", "crash": "", "text": ""})
        if other["outcome"] == "passed":
            continue
        cause = classify(nodeid, other, tests_dir)
        alone = runs.get("alone", {}).get("tests", {}).get(nodeid, {}).get("outcome")
        regressions.setdefault(cause.key, []).append(
            {"test": nodeid, "outcome": other["outcome"], "alone": alone, "crash": shorten(other["crash"], 300)})
        examples.setdefault(cause.key, {"title": cause.title, "explanation": cause.explanation,
                                        "agentmesh": cause.agentmesh, "example_test": nodeid,
                                        "crash": shorten(other["crash"], 300), "line": cause.line(other)})
    plain_only_failures = sorted(n for n, t in plain.items() if t["outcome"] in ("failed", "error"))
    compile_only_passes = sorted(n for n, t in through.items() if t["outcome"] == "passed"
                                 and plain.get(n, {}).get("outcome") != "passed")
    groups = sorted(regressions, key=lambda key: -len(regressions[key]))
    return {
        **meta,
        "runs": {name: {"counts": counts(r["tests"]), "wall_s": r["wall_s"], "exit_code": r["exit_code"],
                        "command": r["command"], "selection": r.get("selection"), **({"prefect_server_start_s": r["prefect_server_start_s"]}
                                                    if "prefect_server_start_s" in r else {})}
                 for name, r in runs.items()},
        "passing_plainly": sum(1 for t in plain.values() if t["outcome"] == "passed"),
        "passing_both": sum(1 for n, t in plain.items() if t["outcome"] == "passed"
                            and through.get(n, {}).get("outcome") == "passed"),
        "fail_only_through_compile": sum(len(v) for v in regressions.values()),
        "plain_failures": plain_only_failures,
        "pass_only_through_compile": compile_only_passes,
        "causes": [{"key": key, "count": len(regressions[key]),
                    "rerun": any(t["alone"] for t in regressions[key]),
                    "pass_alone": sum(1 for t in regressions[key] if t["alone"] == "passed"),
                    **examples[key], "tests": regressions[key]}
                   for key in groups],
    }


def render(results: dict[str, Any]) -> str:
    runs = results["runs"]
    lines = [
        f"# LangGraph {results['langgraph']}'s own test suite through `agentmesh.compile`",
        "",
        f"Written by `make langgraph-suite` (`benchmarks/langgraph_suite/run.py`) on {results['date']}.",
        f"Tests: `tests/` of `{results['tests_from']['sdist']}` from PyPI (sha256 `{results['tests_from']['sha256'][:16]}…`),"
        f" run with `NO_DOCKER=true`, checkpointer parametrizations: `{results['checkpointers']}`"
        f"{', -k ' + repr(results['k']) if results.get('k') else ''}"
        f"{', paths ' + ' '.join(results['paths']) if results.get('paths') else ''}; "
        f"pytest `-n {results['workers']}`, `--timeout={results['timeout']}` s a test; "
        f"{results['cpus']} CPUs.",
        f"Packages: {', '.join(f'{k} {v}' for k, v in results['versions'].items())}.",
        "",
        "| run | selected | passed | failed | errors | skipped | xfailed | wall time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in (("plain", "plain LangGraph"), ("compile", "through `agentmesh.compile`"),
                        ("alone", "rerun alone: the load-sensitive ones of those, one by one, no xdist")):
        if name not in runs:
            continue
        c, wall = runs[name]["counts"], runs[name]["wall_s"]
        extra = (f" (+ {runs[name]['prefect_server_start_s']} s Prefect server start)"
                 if "prefect_server_start_s" in runs[name] else "")
        lines.append(f"| {label} | {c['selected']} | {c['passed']} | {c['failed']} | {c['error']} | {c['skipped']} | "
                     f"{c['xfailed']} | {wall:.0f} s{extra} |")
    lines += [
        "",
        f"Of the **{results['passing_plainly']}** tests that pass plainly, **{results['passing_both']}** pass through "
        f"`agentmesh.compile` and **{results['fail_only_through_compile']}** do not"
        + (f"; {len(results['plain_failures'])} fail plainly ({', '.join(results['plain_failures'][:5])})"
           if results["plain_failures"] else "; none fails plainly")
        + (f"; {len(results['pass_only_through_compile'])} pass only through compile."
           if results["pass_only_through_compile"] else "."),
        "",
    ]
    if results["causes"]:
        alone = "alone" in runs
        lines += ["## Failing only through compile, by cause", "",
                  (f"Pass alone: rerun one at a time through compile, with no other test running ("
                   f"{runs['alone']['counts']['selected']} of the {results['fail_only_through_compile']}: "
                   f"{'all of them' if runs['alone']['counts']['selected'] >= results['fail_only_through_compile'] else 'the load-sensitive groups, `causes.LOAD_SENSITIVE`'}"
                   "). One that passes alone failed from the machine's load, not from a difference in behaviour; "
                   "'–': not rerun." if alone else ""), "",
                  "| cause | tests | pass alone | agentmesh code responsible |", "| --- | ---: | ---: | --- |"]
        lines += [f"| [{c['title']}](#{c['key']}) | {c['count']} | {c['pass_alone'] if c['rerun'] else '–'} | "
                  f"{c['agentmesh']} |" for c in results["causes"]]
        lines.append("")
        for c in results["causes"]:
            lines += [f'<a id="{c["key"]}"></a>', f"### {c['title']} — {c['count']}", "", c["explanation"], "",
                      f"agentmesh: {c['agentmesh']}", "", f"Representative failure (`{c['example_test']}`):", "",
                      "```", c["crash"], *([c["line"]] if c["line"] != c["crash"] else []), "```", "",
                      "<details><summary>tests</summary>", ""]
            lines += [f"- `{t['test']}` ({t['outcome']}{', passes alone' if t.get('alone') == 'passed' else ''}): "
                      f"{t['crash'][:160].replace('|', '/')}" for t in c["tests"]]
            lines += ["", "</details>", ""]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / f"{stem}.md").write_text(render(results))
    log(f"wrote {RESULTS / stem}.json and .md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=(*RUNS, "alone"),
                        help="one run only (the others' last outcomes are reused); alone: only the rerun")
    parser.add_argument("--render", action="store_true", help="no run: results from the last runs' outcomes")
    parser.add_argument("-n", "--workers", type=int, default=2, help="pytest-xdist workers (0: none); default 2")
    parser.add_argument("--timeout", type=int, default=60, help="seconds a test may take (pytest-timeout)")
    parser.add_argument("--checkpointers", default="memory",
                        help="checkpointer parametrizations kept: comma-separated ids or 'all' (default memory)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a test that passes plainly does not pass through compile")
    parser.add_argument("--no-rerun", action="store_true",
                        help="skip rerunning alone the load-sensitive tests that fail only through compile")
    parser.add_argument("-k", help="pytest -k expression (a slice; results go to langgraph-suite-slice.*)")
    parser.add_argument("paths", nargs="*", help="test files or node ids under tests/ (a slice)")
    args = parser.parse_args()

    version = installed_version()
    CACHE.mkdir(parents=True, exist_ok=True)
    src, tests_from = fetch_tests(version)
    python = suite_venv(version)
    runs: dict[str, dict[str, Any]] = {}
    for name in RUNS:
        if args.render or args.only not in (None, name):
            path = CACHE / f"outcomes-{name}.json"
            if not path.exists():
                raise SystemExit(f"no outcomes of a {name} run yet: run without --render/--only first")
            runs[name] = json.loads(path.read_text())
            continue
        if name == "plain":
            runs[name] = pytest_run(name, python, src, args, None)
        else:
            with agentmesh_home(python) as (home, server_s):
                runs[name] = pytest_run(name, python, src, args, home)
                runs[name]["prefect_server_start_s"] = server_s
                (CACHE / f"outcomes-{name}.json").write_text(json.dumps(runs[name]))
                (CACHE / "outcomes-alone.json").unlink(missing_ok=True)
                failing = load_sensitive(regressions_of(runs), runs["compile"]["tests"], src / "tests")
                if failing and not args.no_rerun:
                    runs["alone"] = pytest_run("alone", python, src, args, home, nodeids=failing)
    if args.only == "alone" and not args.render:
        failing = load_sensitive(regressions_of(runs), runs["compile"]["tests"], src / "tests")
        with agentmesh_home(python) as (home, _):
            runs["alone"] = pytest_run("alone", python, src, args, home, nodeids=failing)
    if "alone" not in runs and (CACHE / "outcomes-alone.json").exists():
        runs["alone"] = json.loads((CACHE / "outcomes-alone.json").read_text())
    sys.path.insert(0, str(HERE))
    selection = runs["compile"].get("selection") or {}
    meta = {"langgraph": version, "tests_from": tests_from, "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "versions": package_versions(python), "cpus": os.cpu_count(),
            **{key: selection.get(key) for key in ("checkpointers", "k", "paths", "workers", "timeout")}}
    results = analyse(meta, runs, src / "tests")
    write_results(results, "langgraph-suite-slice" if (selection.get("k") or selection.get("paths"))
                  else "langgraph-suite")
    plain, through = results["runs"]["plain"], results["runs"]["compile"]
    log(f"langgraph {version}: plain {plain['counts']['passed']}/{plain['counts']['selected']} passed in "
        f"{plain['wall_s']:.0f} s; through agentmesh.compile {through['counts']['passed']} passed in "
        f"{through['wall_s']:.0f} s; {results['fail_only_through_compile']} pass plainly but not through compile")
    if args.check and results["fail_only_through_compile"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
