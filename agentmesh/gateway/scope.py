"""The goal's scope: the entities a goal refers to, resolved once per run from data — never from the model.

At a run's start the goal's text is matched against the entities the plug-ins list (``Plugin.scope_entities``:
the sample world's services, datasets and open tickets, each with what it is), and the result is recorded with the
run (``runs.scope``, a ``scope`` event). The gateway checks every write or destructive call whose tool names a
target (``@tool(target="service")``) against that record; a call outside it is refused, sent for approval or
allowed, as the policy's ``[scope]`` table says. Nothing a tool returns can change the record.

Per kind of entity, first match wins:

1. **names**: an entity whose name is a word of the goal (``checkout-api``, ``T-1012``, ``customers``);
2. **the whole kind**: the goal speaks of the kind as a set — a plural (``the open tickets``), a quantifier
   (``every service``, ``all datasets``) or a collective noun the plug-in gives (``the fleet``, ``the queue``);
3. **descriptions**: entities whose text shares a distinctive word with the goal (``login`` → auth-api, whose
   description is "Login and sessions"; ``blender`` → the ticket whose message mentions one). A word is
   distinctive when at most one in ten of the kind's entities (at least one) carry it.

A goal that refers to nothing resolvable has an empty scope for that kind: every write on it is outside. A kind no
plug-in lists (an MCP tool's ``issue_id``) is in scope only when the goal names the value itself.

    >>> kinds = [EntityKind(kind="service", entities=[("checkout-api", "Checkout and order placement"),
    ...                                               ("auth-api", "Login and sessions")])]
    >>> scope = resolve_scope("the login thing is slow", kinds)
    >>> scope.covers("service", "auth-api"), scope.covers("service", "checkout-api")
    (True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EntityKind", "Scope", "resolve_scope"]

_TOKEN = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_QUANTIFIERS = frozenset({"all", "every", "each", "any"})
_DISTINCTIVE = 10  # a description word is distinctive when at most 1 in this many entities of its kind carry it
_QUANTIFIER_REACH = 3  # "every degraded production service": the quantifier may stand this many words before the noun

# English function words and the verbs of any request: they say nothing about which entity is meant.
_STOPWORDS = frozenset(["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "aren", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "cannot", "could", "did", "do", "does", "doing", "don", "down", "during", "each", "few", "for", "from", "further", "get", "got", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "isn", "it", "its", "itself", "just", "let", "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "pls", "please", "thanks", "thank", "hey", "hi", "ok", "okay", "yes", "also", "really", "still", "right", "today", "yesterday", "tomorrow", "make", "sure", "need", "needs", "want", "wants", "keep", "kept", "fix", "sort", "handle", "deal", "take", "care", "look", "looks", "check", "go", "let", "thing", "things", "something", "anything", "everything", "someone", "somebody", "anyone", "everyone", "every", "whatever", "within", "without", "policy", "policies", "limit", "limits", "approval", "agent", "agents"])
# ("policy", "limit", "approval", "agent": how goals speak of agentmesh itself, never of an entity.)


@dataclass(kw_only=True)
class EntityKind:
    """The entities of one kind a plug-in knows, for resolving goals against them."""

    kind: str
    """The kind, as tools name it in ``target_kind`` (``service``, ``dataset``, ``ticket``)."""
    entities: list[tuple[str, str]]
    """Each entity's name and what it is (description, subject and message, …), as a person would call it."""
    nouns: tuple[str, ...] = ()
    """Other nouns for one entity of the kind (``request`` for a ticket); the kind's own name always counts."""
    collectives: tuple[str, ...] = ()
    """Nouns that mean every entity of the kind (``fleet`` for services, ``queue`` for tickets)."""


@dataclass(kw_only=True, frozen=True)
class Scope:
    """What one goal refers to: entities by kind, kinds referred to as a whole, and how each was found."""

    entities: dict[str, list[str]] = field(default_factory=dict)
    """Kind -> the names of the entities the goal refers to."""
    whole: dict[str, str] = field(default_factory=dict)
    """Kind -> the words by which the goal refers to every entity of it (``every service``)."""
    because: dict[str, str] = field(default_factory=dict)
    """Entity name -> why it is in scope (``named``, or the goal's word that matched its description)."""
    listed: tuple[str, ...] = ()
    """The kinds the plug-ins listed; a kind outside them is matched against the goal's own words."""
    goal: str = ""
    """The goal the scope was resolved from."""

    def covers(self, kind: str, value: Any) -> bool:
        """True when an entity of ``kind`` named ``value`` is within the goal's scope."""
        if kind in self.whole:
            return True
        text = str(value).strip().lower()
        if kind in self.listed:
            return text in {name.lower() for name in self.entities.get(kind, ())}
        return bool(text) and text in _tokens(self.goal)

    def describe(self) -> str:
        """One line: ``service checkout-api, auth-api ("login"); ticket: all ("the open tickets")``."""
        parts = []
        for kind in sorted({*self.entities, *self.whole}):
            if kind in self.whole:
                parts.append(f"every {kind} (\"{self.whole[kind]}\")")
                continue
            names = [name if self.because.get(name, "named") == "named" else f"{name} (\"{self.because[name]}\")"
                     for name in self.entities[kind]]
            parts.append(f"{kind} {', '.join(names)}")
        return "; ".join(parts) or "nothing the goal names"

    def as_json(self) -> dict[str, Any]:
        return {"entities": self.entities, "whole": self.whole, "because": self.because, "listed": list(self.listed),
                "summary": self.describe()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, goal: str) -> Scope:
        return cls(entities={k: list(v) for k, v in (data.get("entities") or {}).items()},
                   whole=dict(data.get("whole") or {}), because=dict(data.get("because") or {}),
                   listed=tuple(data.get("listed") or ()), goal=goal)


def resolve_scope(goal: str, kinds: Iterable[EntityKind]) -> Scope:
    """The entities ``goal`` refers to among ``kinds`` (see the module's docstring for the rules)."""
    tokens = _tokens(goal)
    words = [w for token in tokens for w in _split(token)]
    originals: dict[str, str] = {}
    for word in words:
        if _content(word):
            originals.setdefault(_stem(word), word)
    stems = set(originals)
    entities: dict[str, list[str]] = {}
    whole: dict[str, str] = {}
    because: dict[str, str] = {}
    listed = []
    for kind in kinds:
        listed.append(kind.kind)
        named = [name for name, _ in kind.entities if name.lower() in tokens]
        if named:
            entities[kind.kind] = named
            because.update({name: "named" for name in named})
            continue
        phrase = _whole_kind(words, kind)
        if phrase:
            whole[kind.kind] = phrase
            continue
        found = _described(stems, kind)
        if found:
            entities[kind.kind] = list(found)
            because.update({name: originals[stem] for name, stem in found.items()})
    return Scope(entities=entities, whole=whole, because=because, listed=tuple(listed), goal=goal)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _split(token: str) -> list[str]:
    return [w for w in re.split(r"[-_]", token) if w]


def _content(word: str) -> bool:
    return len(word) >= 3 and word not in _STOPWORDS


def _stem(word: str) -> str:
    """A light suffix stripper: enough that "payments", "charged", "escalation" meet "payment", "charge",
    "escalate"; both sides of a comparison go through it, so its oddities cancel out."""
    for suffix, replacement in (("ies", "y"), ("sses", "ss"), ("ations", "at"), ("ation", "at"), ("ions", ""),
                                ("ion", ""), ("ings", ""), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("e", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def _whole_kind(words: list[str], kind: EntityKind) -> str | None:
    """The goal's words that speak of every entity of the kind, if any."""
    singular = {kind.kind.lower(), *(n.lower() for n in kind.nouns)}
    plural = {_plural(n) for n in singular}
    collective = {c.lower() for c in kind.collectives}
    for i, word in enumerate(words):
        if word in plural or word in collective:
            return " ".join(words[max(0, i - 1): i + 1])
        if word in singular and any(w in _QUANTIFIERS for w in words[max(0, i - _QUANTIFIER_REACH): i]):
            start = max(i - _QUANTIFIER_REACH, 0)
            first = next(j for j in range(start, i) if words[j] in _QUANTIFIERS)
            return " ".join(words[first: i + 1])
    return None


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


def _described(stems: set[str], kind: EntityKind) -> dict[str, str]:
    """Entity name -> the goal's distinctive word found in its name or text."""
    carried = {name: {_stem(w) for token in _tokens(f"{name} {text}") for w in _split(token) if _content(w)}
               for name, text in kind.entities}
    counts: dict[str, int] = {}
    for stems_of_one in carried.values():
        for stem in stems_of_one:
            counts[stem] = counts.get(stem, 0) + 1
    most = max(1, len(carried) // _DISTINCTIVE)
    found = {}
    for name, stems_of_one in carried.items():
        shared = sorted(s for s in stems & stems_of_one if counts[s] <= most)
        if shared:
            found[name] = shared[0]
    return found
