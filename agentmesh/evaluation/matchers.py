"""Argument matchers for expected tool calls, and BFCL-style string normalisation.

A matcher is written in a scenario file as one of:

    service: checkout-api                 # a plain value: equals
    service: {equals: checkout-api}
    severity: {one_of: [warning, critical]}
    replicas: {range: [6, 12]}            # inclusive; or {range: {min: 6}}
    ticket_id: {regex: "^T-10(08|32)$"}
    resolution: {any: true}               # present, any value

Strings compare after normalisation as the Berkeley Function Calling Leaderboard's checker does: case,
spaces and the punctuation ``, . / - _ * ^`` are ignored, and single quotes equal double quotes — so
``"Checkout API"`` equals ``"checkout-api"``. Numbers compare by value (``8 == 8.0``); a string holding a
number equals that number (models often quote numbers).

    >>> matches({"range": [6, 12]}, 8)
    True
    >>> matches("checkout-api", "Checkout_API")
    True
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["MatcherError", "args_match", "check_matcher", "explain", "matches", "normalise"]

_KINDS = ("equals", "one_of", "range", "regex", "any")
_PUNCTUATION = re.compile(r"[ ,./\-_*^]")


class MatcherError(ValueError):
    """A matcher written wrongly in a scenario file."""


def normalise(text: str) -> str:
    """BFCL's string standardisation: no spaces or ``, . / - _ * ^``, lower case, ``'`` as ``"``."""
    return _PUNCTUATION.sub("", text).lower().replace("'", '"')


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().lstrip("$"))
        except ValueError:
            return None
    return None


def equal(expected: Any, actual: Any) -> bool:
    """Value equality with normalised strings, numbers by value, and the same rules inside lists and dicts."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual or expected == actual
    if isinstance(expected, int | float) or isinstance(actual, int | float):
        a, b = _number(expected), _number(actual)
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, str) and isinstance(actual, str):
        return normalise(expected) == normalise(actual)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(equal(e, a) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(equal(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


def _kind(spec: Any) -> str:
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in _KINDS:
        return next(iter(spec))
    return "value"


def _bounds(value: Any) -> tuple[float, float]:
    if isinstance(value, list) and len(value) == 2:
        low, high = value
    elif isinstance(value, dict) and set(value) <= {"min", "max"}:
        low, high = value.get("min"), value.get("max")
    else:
        raise MatcherError("range takes [min, max] or {min: .., max: ..}")
    low_n = -math.inf if low is None else _number(low)
    high_n = math.inf if high is None else _number(high)
    if low_n is None or high_n is None or low_n > high_n:
        raise MatcherError(f"range bounds must be numbers with min <= max, got {value!r}")
    return low_n, high_n


def check_matcher(spec: Any, where: str = "matcher") -> None:
    """Raise MatcherError if ``spec`` is not a valid matcher."""
    kind = _kind(spec)
    value = spec[kind] if kind != "value" else spec
    try:
        if kind == "range":
            _bounds(value)
        elif kind == "one_of" and not isinstance(value, list):
            raise MatcherError("one_of takes a list of values")
        elif kind == "regex":
            re.compile(str(value))
        elif kind == "any" and value is not True:
            raise MatcherError("write any: true")
    except re.error as exc:
        raise MatcherError(f"{where}: bad regex: {exc}") from None
    except MatcherError as exc:
        raise MatcherError(f"{where}: {exc}") from None


def matches(spec: Any, actual: Any) -> bool:
    """Whether an actual argument value satisfies a matcher."""
    kind = _kind(spec)
    if kind == "value":
        return equal(spec, actual)
    value = spec[kind]
    if kind == "any":
        return True
    if kind == "equals":
        return equal(value, actual)
    if kind == "one_of":
        return any(equal(v, actual) for v in value)
    if kind == "range":
        low, high = _bounds(value)
        number = _number(actual)
        return number is not None and low <= number <= high
    return actual is not None and re.search(str(value), str(actual)) is not None


def explain(spec: Any) -> str:
    """A matcher as a short phrase, for failure messages."""
    kind = _kind(spec)
    if kind == "value":
        return repr(spec)
    value = spec[kind]
    return {"equals": f"= {value!r}", "one_of": f"one of {value!r}", "range": f"in {value!r}",
            "regex": f"~ /{value}/", "any": "any value"}[kind]


def args_match(expected: dict[str, Any], actual: dict[str, Any], *, exact: bool = False) -> str | None:
    """None when the arguments match; else why not (the first mismatch)."""
    actual = actual or {}
    for name, spec in expected.items():
        if name not in actual:
            return f"argument {name} missing (wanted {explain(spec)})"
        if not matches(spec, actual[name]):
            return f"argument {name}={actual[name]!r} (wanted {explain(spec)})"
    if exact:
        extra = sorted(set(actual) - set(expected))
        if extra:
            return f"unexpected arguments {extra}"
    return None
