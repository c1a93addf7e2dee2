"""A small deterministic lexicon score for ticket text: no model, no download, the same answer every time.

    >>> score("Thanks, great help!")
    1.0
    >>> label(score("This is terrible and unacceptable"))
    'negative'
"""

from __future__ import annotations

import re

__all__ = ["label", "score"]

POSITIVE = {"thanks", "thank", "great", "love", "appreciated", "happy", "kindly", "fine", "fast", "please",
            "helpful", "excellent", "good"}
NEGATIVE = {"terrible", "unacceptable", "awful", "worst", "fraud", "angry", "annoyed", "disappointed", "upset",
            "broken", "poor", "frustrating", "smashed", "cracked", "missing", "failed", "failing", "never", "down",
            "error", "errors", "slow", "wrong", "crushed", "late", "stuck", "locked", "charged", "twice"}
INTENSIFIERS = {"very", "really", "so", "extremely"}
_WORD = re.compile(r"[a-z']+")


def score(text: str) -> float:
    """From -1 (angry) to 1 (pleased): (positive − negative) / matched words, with '!' and intensifiers
    adding weight to the negative side when the text is already negative."""
    words = _WORD.findall(text.lower())
    pos = sum(w in POSITIVE for w in words)
    neg: float = sum(w in NEGATIVE for w in words)
    if neg:
        neg += 0.5 * sum(w in INTENSIFIERS for w in words) + 0.5 * min(text.count("!"), 3)
    if not pos and not neg:
        return 0.0
    return round((pos - neg) / (pos + neg), 2)


def label(value: float) -> str:
    return "negative" if value <= -0.25 else "positive" if value >= 0.25 else "neutral"
