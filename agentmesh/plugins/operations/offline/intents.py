"""Reading a request: its clauses, the intents they carry, each intent's constraints in normalised units.

A goal is cut into *fragments* at sentence ends, semicolons, colons, dashes, commas, and at "and"/"then" before a
verb the tools can carry out. Each fragment is one of:

- an **act**: it starts (after "please", "can you"…) with a verb the tools can carry out — scale, trim, roll back,
  restart, fix, dedupe, clean, close, refund, escalate ("hand … to a person") — or states a target ("auth-api p95
  has to be back at 0.06 s or better");
- a **report**: a question or a "check / tell me / how's" request;
- a **constraint**: a bound or a limit that qualifies an act ("just don't let its p95 go above 0.15 s", "but use at
  most 8 replicas", "don't double what we spend");
- a **request** the tools cannot carry out (a verb like "order", "write", "renew");
- **context**: a statement ("the login thing is super slow"), which names what a later "it" refers to.

Acts and reports become ``Intent``s, in order, each with the context before it and the constraints after it. An
act that only points back ("and close those tickets", "can you sort it?") at an intent of the same domain joins
that intent. "No changes", "don't change anything", "just numbers" make every intent a report.

    >>> [i.action for i in parse_request("roll search back, and dedupe the 2024 shop orders").intents]
    ['rollback', 'dedupe']
    >>> parse_request("auth-api p95 has to be back at 0.06 s or better").intents[0].bounds.latency_ms
    60.0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = ["Bounds", "Intent", "Request", "parse_bounds", "parse_request", "split_fragments"]

# Verbs (and verb phrases) the tools carry out, by the action they ask for. Checked in this order.
_ACTIONS: list[tuple[str, str]] = [
    ("escalate", r"escalat\w*|(?:hand|pass|give|route|forward|send)\b.{0,60}?\bto (?:a |an |the )?(?:person|human|"
                 r"someone|people|staff|colleague|agent|team)\b|hand (?:\w+ )?over"),
    ("rollback", r"roll\w* (?:\w+ ){0,3}back|rollback|revert|(?:switch|move|take|bring) (?:\w+ ){0,3}back to (?:the )?"
                 r"(?:previous|stable|old|last|earlier|prior)|put (?:\w+ ){0,3}(?:previous|old|last|earlier) "
                 r"(?:version|release|build)\w* back|put (?:\w+ ){0,3}back|go back to (?:the )?(?:previous|old|last)|"
                 r"undo (?:the |that |yesterday's )?(?:deploy|release|rollout)"),
    ("restart", r"restart\w*|reboot\w*|bounce|recycle"),
    ("refund", r"refund\w*|reimburse\w*|pay (?:\w+ )?back"),
    ("resolve", r"clos(?:e|ed|ing)|resolv(?:e|ed|ing)|answer|get (?:\w+ ){0,3}(?:resolved|closed|answered)|reply to|respond to|mark (?:\w+ ){0,3}(?:resolved|done|closed)"),
    ("dedupe", r"de-?dup\w*|de-?duplicat\w*|get (?:the )?duplicates out|remove (?:the )?duplicate\w*"),
    ("clean", r"clean\w*|tidy|scrub|fill (?:in )?(?:the )?(?:blanks|gaps|nulls)"),
    ("scale_down", r"trim|halve|scale (?:\w+ )?down|right-?size|shrink|downsize|cut (?:\w+ ){0,2}(?:capacity|replicas|"
                   r"spend|spending|cost|costs|bill)|reduce (?:\w+ ){0,2}(?:replicas|capacity|spend|spending|cost|"
                   r"costs|bill)|save (?:\w+ )?money|lower (?:\w+ ){0,2}(?:cost|costs|spend|bill)"),
    ("scale_up", r"scale|add|give|increase|bump|double(?![- ]?check(?:ing|s)?\b)|triple|quadruple|provision|more (?:capacity|replicas|headroom)"),
    ("fix", r"fix|sort|repair|handle|deal with|take care|address|mitigate|sort (?:\w+ )?out|get|bring|make|"
            r"keep|improve|speed|work through|process|clear|lower|reduce|cut|optimi[sz]e|unblock|stabili[sz]e|"
            r"do (?:it|that|this|so|something|anything)|go ahead|make it happen"),
]
_ACTION_RES = [(name, re.compile(rf"^(?:{pattern})\b", re.I)) for name, pattern in _ACTIONS]
# Verbs of requests nobody here can carry out are not listed: an imperative starting with any other verb is one.
_FILLER = re.compile(
    r"^(?:(?:can|could|would|will) (?:someone|somebody|anyone|we) |(?:so|and|also|then|now|ok(?:ay)?|hey|hi|pls|plz|"
    r"please|kindly|just|quickly|asap|urgently|can|could|would|will) |(?:you|u) |(?:would you mind|i need you to|"
    r"i want you to|we need (?:you )?to|you should|let'?s|go ahead and|try to|be sure to|make sure to) )+", re.I)
_REPORT = re.compile(
    r"^(?:double[- ]?check(?:ing|s)?\b|what|how|why|which|who|when|where|is|are|was|were|does|do|did|has|have|any|anything|"
    r"show|list|report|"
    r"check|status|describe|summari[sz]e|investigate|analy[sz]e|explain|tell me|give me|look at|look into|review|"
    r"profile|see|find out|how's|what's|whats|hows)\b", re.I)
_NO_CHANGE = re.compile(
    r"\b(?:do ?n[o']?t|don't|dont|without|no|not|never|nothing) (?:make |making )?(?:any )?(?:change|changes|"
    r"changing|touch|touching|act|acting|modify|modifying|fix|fixing|scale|scaling|clean|cleaning|write|writing)\b"
    r"(?! (?:the |its |their )?(?:cost|spend|budget|bill|price))|\b(?:just|only) (?:report|look|check|tell|describe|"
    r"investigate|numbers|the numbers|want the numbers|read)\b|\bread-?only\b|\bno changes\b",
    re.I)
_CONSTRAINT = re.compile(
    r"^(?:but|just|only|as long as|provided|without|while|don'?t|do not|never|not|no more than|at most|"
    r"keep(?:ing)? (?:it|its|the)|within|under|below|whatever|and don'?t|must not|stay)\b", re.I)
_PRONOUN_ONLY = re.compile(r"\b(?:it|its|them|they|their|those|these|that|this|him|her|the same|everything|everyone|"
                           r"all of them|both)\b", re.I)
_CHECK = re.compile(r"^(?:check|tell|report|look|show|describe|how|what|which|is|are|profile)\b", re.I)
_QUESTION_END = re.compile(r"\?\s*$")
_ACT_VERB_AHEAD = (r"(?:please |pls |then |also |can you |could you )*(?:escalat|hand|roll|revert|restart|reboot|"
                   r"bounce|refund|close|resolve|dedupe|de-dup|clean|tidy|trim|scale|add|give|fix|sort|repair|"
                   r"handle|deal|take care|get|bring|reduce|cut|put|check|tell|profile|notify|alert)")
# Where a goal splits into fragments. "and"/"then" split only before a verb of the tools (a list of nouns joined by
# "and" stays one fragment: "dedupe the CRM export and the general ledger").
_SPLIT = re.compile(
    r"[.;!?]+(?:\s+|$)|\s+[-–—]+\s+|:\s+|\n+|,\s*(?:and\s+|then\s+|but\s+|so\s+)*(?=\S)|"
    rf"\s+(?:and\s+(?:also\s+|then\s+)?|then\s+)(?={_ACT_VERB_AHEAD})|"
    # "… and the orders table needs a dedupe": a second subject with its own verb is a second clause.
    r"\s+and\s+(?=(?:the|our|my|your|its|their)\s+(?:[\w/-]+\s+){0,3}(?:needs?|requires?|is|are|has|have|should|"
    r"must|keeps?|could use)\b)",
    re.I)
# A clause telling why or since when ("since the marketing mail went out") names a cause, not the target.
_CAUSE = re.compile(r"\b(?:since|because|after|ever since|right after|due to|as soon as|when|before)\b.*$", re.I)
_TICKET_ID = re.compile(r"\b[A-Za-z]{1,4}-\d{2,}\b")
_DOMAIN_WORDS = {
    "ops": re.compile(r"\b(?:p\d\d|latency|slow\w*|sluggish|replicas?|scal\w+|capacity|headroom|cpu|errors?|erroring|"
                      r"roll\w* back|rollback|restart\w*|release\w*|deploy\w*|versions?|trim|over-?provisioned|"
                      r"overloaded|swamped|timeouts?|timing out|crash\w*|down|outage|5\d\d|ms|uptime|services?|"
                      r"spend|cost|\$\s?\d+(?:\.\d+)?\s*/\s*h\w*|per hour|an hour)\b", re.I),
    "data": re.compile(r"\b(?:datasets?|data|tables?|csv|parquet|rows?|columns?|duplicat\w*|dedup\w*|de-dup\w*|blanks?|"
                       r"nulls?|missing values|quality|dirty|feed|export|spikes|outliers?|records|list)\b|\b[a-z0-9]+_[a-z0-9_]+\b",
                       re.I),
    "support": re.compile(r"\b(?:tickets?|refund\w*|escalat\w*|customers? (?:complaint|queue)|complaints?|inbox|backlog|"
                          r"helpdesk|support queue|queue|requests)\b|\b[A-Za-z]{1,4}-\d{2,}\b", re.I),
}
_DOMAIN_OF_ACTION = {"escalate": "support", "refund": "support", "resolve": "support", "dedupe": "data",
                     "clean": "data", "rollback": "ops", "restart": "ops", "scale_down": "ops", "scale_up": "ops"}
_CUSTOMER = re.compile(r"\b(?:customers?|someone's|buyer|shopper)\b.{0,80}\b(?:complain\w*|charged|billed|billing|"
                       r"refund\w*|money|back|wants|says|furious|angry|threaten\w*|ticket)\b|\bcomplaint", re.I)
_IDENTIFIER = re.compile(r"\b[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*[-_](?:[A-Za-z]+\d*|\d+)\b")
_MESSAGE = re.compile(r"^(?:tell|let|inform|reassure|update|assure) (?:them|the customers?|those customers|these "
                      r"customers|him|her|everyone|each)\b", re.I)
_NOTIFY = re.compile(r"\b(?:let (?:the )?(?:ops|operations|on-?call|sre|infra)(?: team| channel| people)? know|notify|alert|page (?:the )?(?:ops|on-?call|operations)|inform (?:the )?(?:ops|operations)|"
                     r"tell (?:the )?(?:ops|operations|on-?call))\b", re.I)


@dataclass(kw_only=True)
class Bounds:
    """Targets and limits an intent states, in normalised units."""

    latency_ms: float | None = None
    """A p95 bound in milliseconds ("under 300ms", "0.06 s or better", "don't let it go above 0.15 s")."""
    cost_usd_hour: float | None = None
    """An hourly cost bound in US dollars ("under $5/hr")."""
    cost_cut_pct: float | None = None
    """A cost cut asked for ("trim its spend by about 40%")."""
    cost_factor: float | None = None
    """Replicas must stay below this multiple of the current count ("don't double what we spend" → 2)."""
    max_replicas: int | None = None
    """A replica ceiling ("at most 8 replicas")."""
    add_replicas: int | None = None
    """Replicas to add ("2 more replicas")."""
    set_replicas: int | None = None
    """A replica count asked for ("scale it up to 6")."""
    scale_factor: float | None = None
    """A multiple of the current replicas asked for ("double the login service" → 2)."""
    modest: bool = False
    """The change should be small ("a bit of", "nothing crazy")."""

    def merge(self, other: Bounds) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(other, name)
            if value not in (None, False) and getattr(self, name) in (None, False):
                setattr(self, name, value)

    def describe(self) -> str:
        parts = []
        if self.latency_ms is not None:
            parts.append(f"p95 at most {self.latency_ms:g} ms")
        if self.cost_usd_hour is not None:
            parts.append(f"cost at most ${self.cost_usd_hour:g}/hour")
        if self.cost_cut_pct is not None:
            parts.append(f"cost down {self.cost_cut_pct:g}%")
        if self.cost_factor is not None:
            parts.append(f"replicas below {self.cost_factor:g}x the current count")
        if self.max_replicas is not None:
            parts.append(f"at most {self.max_replicas} replicas")
        if self.add_replicas is not None:
            parts.append(f"{self.add_replicas} more replicas")
        if self.set_replicas is not None:
            parts.append(f"{self.set_replicas} replicas")
        if self.scale_factor is not None:
            parts.append(f"{self.scale_factor:g}x the current replicas")
        return ", ".join(parts)

    @property
    def target(self) -> bool:
        return self.latency_ms is not None or self.cost_usd_hour is not None or self.cost_cut_pct is not None


@dataclass(kw_only=True)
class Intent:
    """One thing a request asks for."""

    clause: str
    """The fragment that asks for it."""
    context: list[str] = field(default_factory=list)
    """Statements before it (what a pronoun in the clause refers to)."""
    extra: list[str] = field(default_factory=list)
    """Clauses joined to it: constraints, and acts that only point back at it."""
    action: str = "report"
    """``report``, ``fix``, ``scale_up``, ``scale_down``, ``rollback``, ``restart``, ``dedupe``, ``clean``,
    ``resolve``, ``refund`` or ``escalate`` (``target``: a stated bound, no verb)."""
    actions: list[str] = field(default_factory=list)
    """Every action asked, the joined clauses' too (``refund`` and ``resolve``)."""
    domain: str = "any"
    """``ops``, ``data``, ``support``, or ``any`` (decided by what the words resolve to)."""
    bounds: Bounds = field(default_factory=Bounds)
    """Its targets and limits."""
    notify: bool = False
    """It asks to tell operations."""

    @property
    def act(self) -> bool:
        return self.action != "report"

    @property
    def text(self) -> str:
        """Everything said about this intent, in order."""
        return ". ".join([*self.context, self.clause, *self.extra])

    @property
    def own_text(self) -> str:
        """The clause and the clauses joined to it, without the context before it."""
        return ". ".join([self.clause, *self.extra])

    def referring_texts(self) -> list[str]:
        """Where the intent's target is named, best first: the clause without its causes, then the context."""
        texts = [_CAUSE.sub("", self.clause).strip()]
        texts += [_CAUSE.sub("", c).strip() for c in reversed(self.context)]
        texts += [_CAUSE.sub("", c).strip() for c in self.extra]
        return [t for t in texts if t]


@dataclass(kw_only=True)
class Request:
    """A goal read as intents."""

    goal: str
    """The goal, verbatim."""
    intents: list[Intent] = field(default_factory=list)
    """What it asks for, in order."""
    unsupported: list[str] = field(default_factory=list)
    """Requests no tool can carry out ("order 3 pizzas")."""
    no_change: bool = False
    """The goal forbids changes."""
    context: list[str] = field(default_factory=list)
    """Statements no intent took as its context."""

    @property
    def acts(self) -> list[Intent]:
        return [i for i in self.intents if i.act]


def split_fragments(goal: str) -> list[str]:
    parts = [p.strip(" \t'\"()[]") for p in _SPLIT.split(goal or "")]
    return [p for p in parts if p and re.search(r"[A-Za-z0-9]", p)]


def _stripped(fragment: str) -> str:
    return _FILLER.sub("", fragment.strip()).strip()


def action_of(fragment: str) -> str | None:
    """The action a fragment asks for when it starts with a verb the tools carry out."""
    head = _stripped(fragment)
    for name, pattern in _ACTION_RES:
        if pattern.search(head):
            return name
    # "The ledger needs cleaning", "search has to be rolled back": the verb comes after "needs".
    needed = re.search(r"\b(?:needs?|requires?|could use|should be|must be|has to be|have to be)\s+(?:a |an |some |to be )?"
                       r"(.+)$", head, re.I)
    if needed:
        for name, pattern in _ACTION_RES:
            if name not in ("fix", "scale_up") and pattern.search(needed.group(1)):
                return name
    # Whatever the verb ("throw some more capacity at it"), asking for capacity is asking to scale.
    if re.search(r"\bmore (?:capacity|replicas|instances|pods|headroom)\b|\bheadroom\b", head, re.I) and \
            not _QUESTION_END.search(fragment):
        return "scale_up"
    return None


def _is_request(fragment: str) -> bool:
    """An imperative or a "can you …" whose verb no tool carries out."""
    raw = fragment.strip().lower()
    polite = re.match(r"^(?:please |pls |kindly )?(?:can|could|would|will) (?:you|u|we|someone)\b", raw)
    head = _stripped(fragment).lower()
    if polite:
        return True
    first = head.split(" ", 1)[0] if head else ""
    # An imperative starts with a bare verb; a statement starts with its subject ("the", "we", a name).
    return bool(first) and first not in _NOT_VERBS and not _REPORT.match(head) and bool(
        re.fullmatch(r"[a-z]+", first)) and _looks_imperative(head)


_NOT_VERBS = {"the", "a", "an", "we", "i", "it", "its", "it's", "our", "my", "this", "that", "there", "they", "he",
              "she", "you", "your", "his", "her", "their", "some", "all", "every", "each", "one", "two", "no",
              "nothing", "everything", "people", "customers", "someone", "recs", "logins", "card", "product",
              "whatever", "before", "after", "since", "until", "for", "on", "in", "at", "by", "of", "to",
              "with", "from", "thanks", "thank", "hello", "hey", "hi", "quick", "yesterday", "today", "tonight",
              "tomorrow", "finance", "auditors", "marketing", "sales", "both", "also", "still", "too"}


def _looks_imperative(head: str) -> bool:
    words = head.split()
    if len(words) < 2:
        return False
    # "order the team some pizza", "write a little poem", "renew our certificate": verb then its object.
    return words[1] in {"the", "a", "an", "some", "our", "my", "me", "us", "them", "it", "this", "that", "3", "all",
                        "every", "up", "out", "down", "him", "her", "your"} or words[1].isdigit()


_RISEN = re.compile(r"\b(?:jump\w*|rose|rise[sn]?|rising|climb\w*|spik\w*|increas\w*|grew|grow\w*|shot up|crept up|"
                    r"went up|gone up|go(?:es)? up|hit|reach\w*|creep\w*|balloon\w*|soar\w*|drift\w*( up)?)\s*$")


def parse_bounds(text: str, *, negated: bool = False) -> Bounds:
    """The bounds a text states. ``negated``: the text says what must not happen ("don't let it go above 0.15 s"),
    so "above X" is a bound rather than a reading."""
    lowered = text.lower().replace(",", "")
    bounds = Bounds()
    unit = r"(ms|msec|millis(?:econds?)?|milliseconds?|s|secs?|seconds?)\b"
    number = r"(\d+(?:\.\d+)?)\s*(k)?\s*"
    comparators = [r"under", r"below", r"less than", r"<=?", r"≤", r"at most", r"within", r"no more than",
                   r"no higher than", r"max(?:imum)?", r"sub-?", r"back (?:at|to)", r"down to", r"to"]
    if negated:
        comparators += [r"(?:go |get |be |stay )?(?:above|over)", r"exceed(?:s|ing)?", r"more than", r"higher than"]
    # The first bound stated, but a bare "to" only where it is not a reading ("p95 jumped to 1.2 s; get it back under
    # 400 ms", "went up to 900 ms; get it to 300 ms"): a stronger comparator anywhere wins over a bare "to".
    matches = list(re.finditer(rf"({'|'.join(comparators)})\s*~?\s*{number}{unit}", lowered))
    strong = [m for m in matches if m.group(1) != "to"]
    weak = [m for m in matches if m.group(1) == "to" and not _RISEN.search(lowered[:m.start()])]
    chosen = (strong or weak)[:1]
    found = re.match(rf"(?:{'|'.join(comparators)})\s*~?\s*{number}{unit}", chosen[0].group(0)) if chosen else None
    if not found:
        found = re.search(rf"{number}{unit}\s*(?:or (?:better|less|lower|under|below|faster)|max\b|tops\b)", lowered)
    if found:
        value = float(found.group(1)) * (1000 if found.group(2) else 1)
        bounds.latency_ms = value if found.group(3).startswith("m") else value * 1000
    cost = re.search(r"(?:under|below|less than|at most|within|no more than|max(?:imum)?|budget(?: of)?|to|<=?)\s*"
                     r"\$\s?(\d+(?:\.\d+)?)\s*(?:/|per |an |a )\s*(?:hr|hour|h)\b", lowered)
    cost = cost or re.search(r"(?:n't|not|never|no)\s+(?:\w+\s+){0,3}(?:more than|over|above|exceed\w*)\s*\$\s?"
                             r"(\d+(?:\.\d+)?)\s*(?:/|per |an |a )\s*(?:hr|hour|h)\b", lowered)
    if cost:
        bounds.cost_usd_hour = float(cost.group(1))
    pct = re.search(r"(?:by|cut|reduce|trim|save|lower)\D{0,30}?(\d+(?:\.\d+)?)\s*(?:%|percent\b)", lowered)
    if pct and re.search(r"cost|spend|bill|budget|money|cheaper|trim|save", lowered):
        bounds.cost_cut_pct = min(95.0, float(pct.group(1)))
    if re.search(r"(?:without|don'?t|do not|never|not) (?:\w+ ){0,2}doubl|less than double", lowered):
        bounds.cost_factor = 2.0
    elif re.search(r"without (?:\w+ ){0,2}(?:increasing|raising|adding) (?:\w+ ){0,2}(?:cost|spend)|same cost|"
                   r"no (?:extra|additional) cost", lowered):
        bounds.cost_factor = 1.0
    cap = re.search(r"(?:at most|no more than|max(?:imum)?(?: of)?|up to|cap(?:ped)? at|not more than)\s*(\d+)\s*"
                    r"replicas?", lowered)
    if cap:
        bounds.max_replicas = int(cap.group(1))
    add = re.search(r"\b(\d+)\s+(?:more|extra|additional)\s+(?:replicas?|instances?|pods?|copies)\b", lowered) or \
        re.search(r"\badd\s+(\d+)\s+(?:replicas?|instances?|pods?)\b", lowered)
    if add:
        bounds.add_replicas = int(add.group(1))
    to = re.search(r"\b(?:scale|bring|set|put|grow|take|run)\b(?: [\w-]+){0,3}? (?:up |down )?to (\d+)(?: replicas?| "
                   r"instances?| pods?)?(?!\s*(?:%|ms|s\b|sec|\.\d))", lowered)
    if to and not add:
        bounds.set_replicas = int(to.group(1))
    # Only as the ask itself ("double the login service", "give it twice as many replicas"), not "double billing".
    times = re.search(r"(?:^|\b(?:please|just|and|then|to|you|we|can|could)\s)(double|triple|quadruple)\b"
                      r"(?![- ]?check(?:ing|s)?\b)|\b(double|triple|twice) (?:as many|(?:the|its|their|our) "
                      r"(?:replicas|capacity|instances|pods|headroom))\b", lowered)
    if times and bounds.cost_factor is None and not (add or to):
        bounds.scale_factor = {"double": 2.0, "triple": 3.0, "quadruple": 4.0, "twice": 2.0}[times.group(1) or
                                                                                          times.group(2)]
    if re.search(r"\bhalve\b|\bcut (?:\w+ ){0,3}in half\b|\bhalf (?:the|as many) (?:replicas|instances|pods|capacity)",
                 lowered) and bounds.cost_cut_pct is None:
        bounds.cost_cut_pct = 50.0
    bounds.modest = bool(re.search(r"\b(?:a bit|a little|a touch|slightly|nothing crazy|modest\w*|some headroom|"
                                   r"not too much|a few)\b", lowered))
    return bounds


def _domain(text: str, action: str | None, bounds: Bounds | None = None) -> str:
    if action in _DOMAIN_OF_ACTION:
        return _DOMAIN_OF_ACTION[action]
    if bounds is not None and (bounds.target or bounds.add_replicas or bounds.set_replicas or bounds.max_replicas
                               or bounds.scale_factor):
        return "ops"
    scores = {d: len(p.findall(text)) for d, p in _DOMAIN_WORDS.items()}
    # A customer who complains, was charged or wants money back is a support matter, whatever they mention.
    if _CUSTOMER.search(text):
        scores["support"] += 2
    best = max(scores.values())
    if not best:
        return "any"
    top = [d for d, s in scores.items() if s == best]
    return top[0] if len(top) == 1 else "any"


def _points_back(fragment: str) -> bool:
    """The fragment names nothing of its own: "close those tickets", "sort it out", "roll it back"."""
    head = _stripped(fragment)
    words = re.findall(r"[a-z0-9_-]+", head.lower())
    content = [w for w in words[1:] if w not in _BACK_WORDS]
    return bool(_PRONOUN_ONLY.search(head)) and len(content) <= 1 or not content


_BACK_WORDS = {"it", "its", "them", "they", "their", "those", "these", "that", "this", "the", "a", "an", "up", "out",
               "back", "down", "off", "please", "pls", "now", "asap", "too", "also", "as", "well", "tickets",
               "ticket", "everything", "everyone", "all", "of", "both", "thing", "things", "one", "ones", "to",
               "same", "again", "for", "me", "us", "quickly", "today", "right", "away", "over", "with", "care",
               "dataset", "data", "service", "table", "list", "file", "sorted", "so", "and", "fix", "sort", "is",
               "it's", "what", "fair", "rest", "remaining", "others", "needed", "appropriate", "possible", "can"}


def parse_request(goal: str) -> Request:
    """The intents of a goal; see the module docstring."""
    request = Request(goal=goal)
    request.no_change = bool(_NO_CHANGE.search(goal or ""))
    pending: list[str] = []
    for fragment in split_fragments(goal):
        head = _stripped(fragment)
        action = action_of(fragment)
        negated = bool(re.match(r"^(?:just |and |but )?(?:don'?t|do not|never|must not|shouldn'?t|not)\b",
                                fragment.strip(), re.I))
        bounds = parse_bounds(fragment, negated=negated)
        if _NO_CHANGE.search(fragment) and not bounds.target and action is None and not _CHECK.match(head) or \
                re.search(r"\bleave\b.*\balone\b", fragment, re.I):
            continue
        if action is None and (_NOTIFY.search(fragment) or _MESSAGE.match(head)):
            if request.intents:
                request.intents[-1].notify = request.intents[-1].notify or bool(_NOTIFY.search(fragment))
                request.intents[-1].extra.append(fragment)
            continue
        constraint = bool(_CONSTRAINT.match(fragment.strip())) and (bounds.target or bounds.max_replicas is not None
                                                                    or bounds.cost_factor is not None
                                                                    or bounds.modest or action is None)
        if constraint and request.intents and (action is None or negated):
            request.intents[-1].extra.append(fragment)
            request.intents[-1].bounds.merge(bounds)
            continue
        question = bool(_QUESTION_END.search(fragment)) and action is None or bool(_REPORT.match(head)) and \
            action is None
        if action is None and not question and bounds.target and not re.match(r"^(?:what|how)\b", head, re.I):
            action = "target"
        # A count or a bound with no verb of its own ("maybe 2 extra replicas") qualifies the ask before it.
        if action is None and not question and request.intents and request.intents[-1].act and (
                bounds.add_replicas is not None or bounds.set_replicas is not None or bounds.max_replicas is not None
                or bounds.scale_factor is not None):
            request.intents[-1].extra.append(fragment)
            request.intents[-1].bounds.merge(bounds)
            continue
        if action is None and not question:
            if _is_request(fragment) and not bounds.target:
                request.unsupported.append(fragment)
            elif constraint and not request.intents:
                pending.append(fragment)
            else:
                pending.append(fragment)
            continue
        kind = action or "report"
        # A verb as vague as "fix", "handle" or "get" takes its meaning from what it is said with.
        if kind in ("fix", "target", "report"):
            kind = _refine(kind, fragment, bounds)
        domain = _domain(fragment, kind if kind != "fix" else None, bounds)
        if domain == "any":
            # Who reported it ("T-1012 says checkout throws 503s") does not make the ask about that ticket.
            domain = _domain(" ".join([fragment, *(_TICKET_ID.sub(" ", p) for p in pending)]), None, bounds)
        last = request.intents[-1] if request.intents else None
        # A bound with no name of its own after an act ("p95 must go under 150 ms") qualifies that act.
        if last is not None and last.act and kind == "target" and not pending and not _IDENTIFIER.search(fragment) \
                and last.domain in (domain, "any"):
            last.extra.append(fragment)
            last.bounds.merge(bounds)
            continue
        # An act that points back at a question just asked ("Anything urgent? If so, get it resolved") answers it.
        if last is not None and not last.act and kind != "report" and _points_back(fragment):
            request.intents.pop()
            pending = [*last.context, last.clause, *last.extra, *pending]
            domain = domain if domain != "any" else last.domain
            last = request.intents[-1] if request.intents else None
        if last is not None and last.act and kind != "report" and _points_back(fragment) and not pending \
                and domain in (last.domain, "any"):
            last.extra.append(fragment)
            last.actions.append(kind)
            last.bounds.merge(bounds)
            last.notify = last.notify or bool(_NOTIFY.search(fragment))
            continue
        intent = Intent(clause=fragment, context=pending, action=kind, actions=[kind], domain=domain, bounds=bounds,
                        notify=bool(_NOTIFY.search(fragment)))
        # A report that points back at a report just asked ("Is that true?") adds nothing of its own.
        if kind == "report" and last is not None and not last.act and not pending and (
                _points_back(fragment) or domain == "any"):
            last.extra.append(fragment)
            continue
        request.intents.append(intent)
        pending = []
    if pending and request.intents:
        request.intents[-1].extra.extend(pending)
        request.intents[-1].bounds.merge(parse_bounds(" ".join(pending)))
    elif pending:
        request.context = pending
    if request.no_change:
        for intent in request.intents:
            intent.action, intent.actions = "report", ["report"]
    # A goal that is only statements ("the search error rate is 7%") is a question about them.
    if not request.intents and not request.unsupported and request.context:
        request.intents.append(Intent(clause=request.context[-1], context=request.context[:-1],
                                      domain=_domain(goal, None)))
        request.context = []
    for intent in request.intents:
        if intent.domain == "any":
            said = ". ".join([*(_TICKET_ID.sub(" ", c) for c in intent.context), intent.clause, *intent.extra])
            intent.domain = _domain(said, None, intent.bounds)
    return request


def _refine(kind: str, fragment: str, bounds: Bounds) -> str:
    lowered = fragment.lower()
    if kind == "report":
        return "report"
    if bounds.set_replicas is not None or bounds.add_replicas is not None or bounds.scale_factor or re.search(
            r"\bmore (?:capacity|replicas|headroom|instances)\b|\bheadroom\b", lowered):
        return "scale_up"
    if re.search(r"\bduplicat\w*|\bdedup", lowered):
        return "dedupe"
    if re.search(r"\b(?:cheaper|cost(?:s)? less|spend less|less money|save money|smaller bill|lower (?:the )?"
                 r"(?:cost|bill|spend)|too (?:expensive|costly)|over-?provisioned)\b", lowered):
        return "scale_down"
    if bounds.target or kind == "target":
        return "target"
    return "fix"


def replicas_for_budget(budget_usd_hour: float, cost_per_replica_hour: float) -> int:
    """The most replicas an hourly budget pays for."""
    return max(0, math.floor(budget_usd_hour / cost_per_replica_hour + 1e-9)) if cost_per_replica_hour > 0 else 0
