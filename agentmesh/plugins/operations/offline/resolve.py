"""What a request refers to, resolved from what the world holds: names, name parts, aliases, descriptions.

Entities come from the listing results in the conversation (``list_services``, ``list_datasets``,
``list_tickets`` and ``get_ticket``), never from a list in code. A phrase matches an entity by

- an **exact name** ("checkout-api", "finance_ledger", "T-1012"): certain;
- an **identifier** that names nothing ("pricing-api", "marketing_leads", "T-1999"): an unknown target, never
  matched to a look-alike (a hyphenated word counts as one when it ends like the names of that kind do);
- a quoted **alias** in a description (``Personalised recommendations ("recs")``): certain;
- shared **words** with the name's parts and the description, stemmed, each weighted by how rare it is among the
  entities of that kind (IDF), name parts counting more than description words.

A word match is confident when its score reaches ``MIN_SCORE`` and leads the next entity by ``MARGIN``; otherwise
the phrase is unresolved (nothing is a good enough match) or ambiguous (two are), and the rules act on neither.

    >>> index = EntityIndex([Entity(kind="service", name="auth-api", description="Login and sessions"),
    ...                      Entity(kind="service", name="payments-api", description="Card payments and refunds"),
    ...                      Entity(kind="service", name="checkout-api", description="Checkout and order placement")])
    >>> index.resolve("the login thing is slow", kinds=("service",)).names
    ['auth-api']
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agentmesh.models.offline.conversation import Conversation, items_in

__all__ = ["Entity", "EntityIndex", "Resolution", "entity_index", "stem", "words"]

MIN_SCORE = 1.2
"""The least word evidence that names an entity (one rare word in a name, or two in a description)."""
MARGIN = 1.5
"""How far the best match must lead the second to be taken."""
KIND_OF_TOOL = {"list_services": "service", "list_datasets": "dataset", "list_tickets": "ticket"}
PLURAL = {"service": "services", "dataset": "datasets", "ticket": "tickets"}

# Words that say nothing about which entity is meant.
_STOP_WORDS = (
    "a an the this that these those it its it's is are was were be been being am do does did done to of in on at by "
    "for with from as and or but if so not no nor too very just only also then than there here what which who whom "
    "whose when where why how all any both each every few more most other some such own same can could should would "
    "will may might must shall please pls plz thing things stuff one ones someone something anything everything "
    "everyone whatever whoever i me my we us our you your he him his she her they them their up down out over again "
    "once now today tonight yesterday tomorrow morning night day week hour hours minute minutes quick q hey hi ok "
    "okay thanks get got give gave make made let lets keep kept go going gone went said says say see look looks "
    "looking feel feels seem seems need needs want wants like bit little lot super really right asap back about "
    "into onto off ticket tickets service services api svc app system data dataset datasets table file list thingy "
    "team guys folks fix sort handle deal care take close resolve refund escalate dedupe clean scale trim restart "
    "roll rollback tell know works work working sorted people customer customers person human anyone nobody"
)
_STOP = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[a-z0-9]+")
_ALIAS = re.compile(r"[\"“'‘]([^\"”'’]{2,40})[\"”'’]")
_TICKET_ID = re.compile(r"\b[A-Za-z]{1,4}-\d{2,}\b")


_SERVICE_SUFFIXES = frozenset({"api", "svc", "service", "worker", "gateway", "web", "db", "server", "backend", "cache",
                               "queue", "proxy"})


def stem(word: str) -> str:
    """A crude stem: plural, -ed and -ing endings off, then at most seven letters ("delivered", "delivery" →
    "deliver"; "exported" → "export")."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    if len(w) > 5 and w.endswith("y"):
        w = w[:-1]
    return w[:7]


def words(text: str) -> list[str]:
    """The stemmed content words of a text."""
    return [stem(w) for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOP]


@dataclass(kw_only=True)
class Entity:
    """One thing the world holds, as a listing showed it."""

    kind: str
    """``service``, ``dataset`` or ``ticket``."""
    name: str
    """Its name or id."""
    description: str = ""
    """What it is (a ticket's subject and message)."""
    aliases: tuple[str, ...] = ()
    """Quoted names in its description."""
    record: dict[str, Any] = field(default_factory=dict)
    """The listing's record of it."""

    def name_words(self) -> set[str]:
        return {stem(p) for p in _WORD.findall(self.name.lower()) if len(p) > 1 and p not in _STOP}

    def description_words(self) -> set[str]:
        return set(words(self.description))


@dataclass(kw_only=True)
class Resolution:
    """What a phrase refers to."""

    kind: str
    """The kinds searched, joined by "/" ("service/dataset")."""
    phrase: str
    """The words that were resolved."""
    names: list[str] = field(default_factory=list)
    """Entities it names, confidently."""
    unknown: list[str] = field(default_factory=list)
    """Identifiers in it that name nothing that exists."""
    candidates: list[str] = field(default_factory=list)
    """When ambiguous: the entities it could mean."""
    how: str = ""
    """How it was resolved: "named", "alias", "words"."""

    @property
    def ok(self) -> bool:
        return bool(self.names) and not self.unknown


class EntityIndex:
    """Entities of one world, with word weights per kind."""

    def __init__(self, entities: Iterable[Entity]) -> None:
        self.entities = list(entities)
        self._idf: dict[str, dict[str, float]] = {}
        for kind in {e.kind for e in self.entities}:
            same = [e for e in self.entities if e.kind == kind]
            df: dict[str, int] = {}
            for e in same:
                for w in e.name_words() | e.description_words():
                    df[w] = df.get(w, 0) + 1
            self._idf[kind] = {w: math.log(1 + len(same) / n) for w, n in df.items()}

    def of(self, *kinds: str) -> list[Entity]:
        return [e for e in self.entities if e.kind in kinds]

    def names(self, kind: str) -> list[str]:
        return [e.name for e in self.entities if e.kind == kind]

    def get(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.name.lower() == name.lower()), None)

    def identifiers(self, text: str, kinds: tuple[str, ...]) -> list[str]:
        """Name-like tokens in a text: ticket ids, snake_case words, and hyphenated words ending like a name of one
        of these kinds ends ("pricing-api" when "checkout-api" exists; not "password-reset")."""
        found = []
        suffixes = {re.split(r"[-_]", e.name.lower())[-1] for e in self.of(*kinds) if re.search(r"[-_]", e.name)}
        if "service" in kinds:  # what services are commonly called, listed or not ("orders-db" names one)
            suffixes |= _SERVICE_SUFFIXES
        for token in re.findall(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)+", text):
            lowered = token.lower().rstrip(".")
            if re.fullmatch(r"[a-z]{1,4}-\d{2,}", lowered):
                if "ticket" in kinds:
                    found.append(token.upper())
            elif "_" in lowered or re.split(r"[-_]", lowered)[-1] in suffixes:
                found.append(lowered.rsplit(".", 1)[0] if lowered.endswith((".csv", ".parquet")) else lowered)
        return list(dict.fromkeys(found))

    def score(self, entity: Entity, phrase_words: set[str]) -> float:
        idf = self._idf.get(entity.kind, {})
        name, described = entity.name_words(), entity.description_words()
        total = 0.0
        for w in phrase_words:
            if w in name:
                total += 2.0 * idf.get(w, 1.0)
            elif w in described:
                total += idf.get(w, 1.0)
        return total

    def resolve(self, phrase: str, *, kinds: tuple[str, ...]) -> Resolution:
        """The entities of ``kinds`` a phrase names (see the module docstring)."""
        resolution = Resolution(kind="/".join(kinds), phrase=phrase)
        pool = self.of(*kinds)
        lowered = phrase.lower()
        for ident in self.identifiers(phrase, kinds):
            match = self.get(ident)
            if match is not None and match.kind in kinds:
                resolution.names.append(match.name)
            elif match is None:
                resolution.unknown.append(ident)
        for e in pool:
            if e.name not in resolution.names and re.search(rf"(?<![\w-]){re.escape(e.name.lower())}(?![\w-])", lowered):
                resolution.names.append(e.name)
        # An identifier beside a name that exists is a column or a field of it ("customers on customer_id").
        if resolution.names and not any(re.fullmatch(r"[A-Z]{1,4}-\d+", u) for u in resolution.unknown):
            resolution.unknown = []
        if resolution.names or resolution.unknown:
            resolution.how = "named"
            return resolution
        for e in pool:
            if any(re.search(rf"(?<![\w-]){re.escape(a.lower())}(?![\w-])", lowered) for a in e.aliases):
                resolution.names.append(e.name)
        if resolution.names:
            resolution.how = "alias"
            return resolution
        phrase_words = set(words(phrase))
        scored = sorted(((self.score(e, phrase_words), e.name) for e in pool), reverse=True)
        scored = [s for s in scored if s[0] > 0]
        if not scored or scored[0][0] < MIN_SCORE:
            return resolution
        if len(scored) > 1 and scored[0][0] < MARGIN * scored[1][0]:
            resolution.candidates = [n for s, n in scored if s * MARGIN >= scored[0][0]]
            return resolution
        resolution.names, resolution.how = [scored[0][1]], "words"
        return resolution


def _record_entity(kind: str, item: dict[str, Any]) -> Entity | None:
    name = next((item[k] for k in ("name", "id", "ticket_id") if isinstance(item.get(k), str)), None)
    if not name:
        return None
    parts = [str(item.get(k) or "") for k in ("description", "subject", "body")]
    message = item.get("customer_message")
    if isinstance(message, dict):
        parts += [str(message.get(k) or "") for k in ("subject", "body")]
    # A ticket that asks for money back is a refund request, whatever words it uses.
    if kind == "ticket" and isinstance(item.get("requested_refund_usd"), int | float) and item["requested_refund_usd"] > 0:
        parts.append("refund request")
    description = " ".join(p for p in parts if p)
    aliases = tuple(a.strip() for a in _ALIAS.findall(str(item.get("description") or "")))
    return Entity(kind=kind, name=name, description=description, aliases=aliases, record=item)


def entity_index(conv: Conversation) -> EntityIndex:
    """Every entity the conversation's listings and ticket reads show (a later read of a ticket adds its message)."""
    found: dict[tuple[str, str], Entity] = {}
    for obs in conv.observations:
        if not obs.ok:
            continue
        kind = KIND_OF_TOOL.get(obs.name)
        items: list[Any] = items_in(obs.result) if kind else []
        if obs.name == "get_ticket" and isinstance(obs.result, dict):
            kind, items = "ticket", [obs.result]
        for item in items:
            if isinstance(item, dict) and kind:
                entity = _record_entity(kind, item)
                if entity is not None:
                    known = found.get((kind, entity.name))
                    if known is not None and obs.name != "get_ticket":
                        continue
                    found[(kind, entity.name)] = entity
    return EntityIndex(found.values())
