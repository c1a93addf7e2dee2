"""The README's examples run as written: every fenced Python and console block is read from README.md itself
and run here, in order, in one fresh folder — or is marked not runnable, with a reason.

Markers, on the line before a fence:

- ``<!-- file: PATH -->``: the block is that file; it is written to PATH in the folder (so later blocks use it)
  and must equal the repository's PATH, so the README and ``examples/`` cannot drift apart.
- ``<!-- not runnable: REASON -->``: skipped, with the reason (a server that runs until stopped, minutes of
  trials, a mistake shown on purpose).

A console block runs each ``$ `` line with the installed ``agentmesh`` on PATH (``export`` sets variables for the
lines after it); ``RUN_ID`` stands for the latest run. A command must exit 0, or 2 when the README shows
``error:`` under it. A block without a language that starts with ``$ `` is a console block too.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
MARK = re.compile(r"^\s*<!--\s*(file|not runnable):\s*(.*?)\s*-->\s*$")

pytestmark = pytest.mark.slow


@dataclass
class Block:
    line: int
    lang: str
    text: str
    mark: str | None
    value: str

    @property
    def name(self) -> str:
        return f"README.md:{self.line}:{self.lang}"


def blocks() -> list[Block]:
    found: list[Block] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        indent, lang = opened.groups()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:end]]
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = MARK.match(before)
        text = "\n".join(body) + "\n"
        if not lang and text.startswith("$ "):
            lang = "console"
        found.append(Block(i + 1, lang, text, mark.group(1) if mark else None, mark.group(2) if mark else ""))
        i = end + 1
    return found


EXAMPLES = [b for b in blocks() if b.lang in ("python", "console") or b.mark == "file"]


def test_every_python_and_console_block_runs_or_says_why_not() -> None:
    assert len([b for b in EXAMPLES if b.mark is None]) >= 4, "the README's examples are run, not only marked"
    for block in EXAMPLES:
        if block.mark == "not runnable":
            assert len(block.value) >= 10, f"{block.name}: say why it is not runnable"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The newcomer's folder: empty, with the default home (.agentmesh) inside it."""
    path = tmp_path_factory.mktemp("readme")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTMESH_", "OPENAI_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", NO_COLOR="1", COLUMNS="100", PYTHONUNBUFFERED="1")
    yield path, env
    from agentmesh.runtime.prefect import stop_all_local_servers

    stop_all_local_servers(under=path)  # those a block's own processes started (the MCP server's)


def _latest_run(env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(["agentmesh", "runs", "list", "--json", "--limit", "1"], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() != "[]", f"RUN_ID needs a run before it: {done.stderr}"
    import json

    return json.loads(done.stdout)[0]["run_id"]


def _console(block: Block, env: dict[str, str], cwd: Path) -> None:
    lines = block.text.splitlines()
    for n, line in enumerate(lines):
        if not line.startswith("$ "):
            continue
        argv = shlex.split(line[2:], comments=True)
        if argv[0] == "export":
            env.update(dict(word.split("=", 1) for word in argv[1:]))
            continue
        if "RUN_ID" in argv:
            run_id = _latest_run(env, cwd)
            argv = [run_id if word == "RUN_ID" else word for word in argv]
        shown = lines[n + 1] if n + 1 < len(lines) else ""
        expected = 2 if shown.startswith("error:") else 0
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=900,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == expected, f"{block.name}: `{line[2:]}` exited {done.returncode}:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("block", EXAMPLES, ids=[b.name for b in EXAMPLES])
def test_readme_block(block: Block, folder) -> None:  # type: ignore[no-untyped-def]
    cwd, env = folder
    if block.mark == "not runnable":
        pytest.skip(block.value)
    if block.mark == "file":
        target = cwd / block.value
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text)
        original = ROOT / block.value
        if original.exists():
            assert block.text == original.read_text(), f"{block.name} differs from {block.value}"
        return
    if block.lang == "python":
        script = cwd / f"readme_{block.line}.py"
        script.write_text(block.text)
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=900, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{block.name} failed:\n{done.stderr[-3000:]}"
        return
    _console(block, env, cwd)
