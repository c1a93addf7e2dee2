"""Where a key or a value sits in a TOML file, so that an error in a settings or policy file can name its line.

``tomllib`` returns plain data without positions, and tomlkit keeps formatting but not line numbers either; the
files agentmesh reads are small and hand-written, so a line scanner that understands tables (``[a.b]``,
``[[a]]``), keys (bare, quoted and dotted) and values spanning lines is enough. It is used only after ``tomllib``
parsed the file, so it never has to decide whether the text is valid TOML.

    >>> text = 'approval_required = ["scale_servise"]\\n[roles]\\noptimizer = [\\n  "get_ticket",\\n]\\n'
    >>> locate(text, ("approval_required",), value="scale_servise"), locate(text, ("roles", "optimizer"), value="get_ticket")
    (1, 4)
    >>> close_match("scale_servise", ["scale_service", "get_ticket"])
    " (did you mean 'scale_service'?)"
    >>> import tomllib
    >>> try:
    ...     tomllib.loads("a = 1\\nb = = 2\\n")
    ... except tomllib.TOMLDecodeError as exc:
    ...     syntax_error("settings file", "agentmesh.toml", exc)
    'settings file agentmesh.toml:2: not valid TOML: Invalid value (column 5)'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["close_match", "locate", "syntax_error", "where"]

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def _keys(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(dotted))


def _entries(text: str) -> dict[tuple[str, ...], tuple[int, int]]:
    """Every table and key path -> (first line, last line of its value), 1-based."""
    found: dict[tuple[str, ...], tuple[int, int]] = {}
    table: tuple[str, ...] = ()
    lines = text.splitlines()
    starts: list[tuple[tuple[str, ...], int]] = []
    for number, line in enumerate(lines, 1):
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            table = _keys(header.group(1))
            starts.append((table, number))
            continue
        key = _KEY.match(line)
        if key and (not starts or _closed(lines, starts[-1][1], number)):
            starts.append((table + _keys(key.group(1)), number))
    for i, (path, start) in enumerate(starts):
        end = starts[i + 1][1] - 1 if i + 1 < len(starts) else len(lines)
        found.setdefault(path, (start, end))
    return found


def _closed(lines: list[str], start: int, number: int) -> bool:
    """True when the value that began on line ``start`` ended before line ``number`` (its brackets balance)."""
    depth = 0
    for line in lines[start - 1: number - 1]:
        value = re.sub(r"\"[^\"]*\"|'[^']*'", "", line.split("=", 1)[1] if depth == 0 and "=" in line else line)
        value = value.split("#", 1)[0]
        depth += value.count("[") + value.count("{") - value.count("]") - value.count("}")
    return depth <= 0


def locate(text: str, path: Sequence[str | int], *, value: str | None = None) -> int | None:
    """The line of ``path`` (keys from the top; list indices are skipped) in the TOML ``text``, or of the nearest
    table or key above it that the text has; with ``value``, the line inside that entry where the value is written."""
    keys = tuple(str(p) for p in path if not isinstance(p, int))
    entries = _entries(text)
    for length in range(len(keys), 0, -1):
        span = entries.get(keys[:length])
        if span is None:
            continue
        if value is not None:
            lines = text.splitlines()
            quoted = re.compile(rf"""(["']){re.escape(value)}\1|^\s*{re.escape(value)}\s*=""")
            for number in range(span[0], span[1] + 1):
                if quoted.search(lines[number - 1]):
                    return number
        return span[0]
    return None


def where(file: object, text: str, path: Sequence[str | int], *, value: str | None = None) -> str:
    """``file:line`` (or just ``file`` when the line is unknown), for the start of an error message."""
    line = locate(text, path, value=value)
    return f"{file}:{line}" if line else str(file)


def close_match(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or an empty string."""
    found = difflib.get_close_matches(name, sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


_AT = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


def syntax_error(kind: str, file: object, exc: ValueError, text: str | None = None) -> str:
    """One line for a ``tomllib.TOMLDecodeError``: ``KIND FILE:LINE: not valid TOML: WHAT (column N)``.

    ``tomllib`` (before Python 3.14) puts the position in the message only; "at end of document" is the last line
    of ``text`` (read from ``file`` when not given)."""
    message = str(exc)
    found = _AT.search(message)
    if found is None:
        return f"{kind} {file}: not valid TOML: {message}"
    what = message[: found.start()]
    if found.group(1):
        return f"{kind} {file}:{found.group(1)}: not valid TOML: {what} (column {found.group(2)})"
    if text is None:
        try:
            text = Path(str(file)).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
    last = max(len(text.splitlines()), 1)
    return f"{kind} {file}:{last}: not valid TOML: {what} (at the end of the file)"
