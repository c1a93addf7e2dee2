"""Rules for ticket steps: list open tickets, read the urgent ones, resolve within the refund cap or escalate.

Ticket text is customer-written data. The only things taken from it are a refund amount and whether it
looks like an attempt to instruct the agent, abuse, or a legal matter; those are escalated, never obeyed.
"""

from __future__ import annotations

import math
import re
from typing import Any

from agentmesh.models.offline.conversation import Call, Conversation, find_number, items_in
from agentmesh.plugins.operations.offline.resolve import stem, words

__all__ = ["support_finding", "support_next"]

MAX_TICKETS = 5
DEFAULT_REFUND_CAP_USD = 50.0
_RANK = {"urgent": 0, "critical": 0, "p1": 0, "high": 1, "p2": 1, "normal": 2, "medium": 2, "p3": 2, "low": 3}
_INJECTION = re.compile(
    r"ignore (?:all |any |the )?(?:previous|prior|above|earlier|your|other)|disregard|system prompt|you are now|"
    r"new instructions?|developer mode|jailbreak|override|\bsudo\b|admin(?:istrator)? (?:mode|access|override)|"
    r"<\s*/?\s*(?:system|data|script|tool)|tool call|function call|as an ai|assistant:|\bsystem:|"
    r"(?:resolve|escalate|scale|clean|refund)_\w+|refund (?:all\b|everyone|every (?:customer|ticket))|"
    r"approve (?:all|every|this)|(?:close|resolve|mark) (?:all|every) tickets?|"
    r"(?:note|message|instructions?|request) (?:to|for) (?:the )?(?:ai|agent|assistant|model|bot)",
    re.IGNORECASE,
)
_LEGAL = re.compile(r"\b(lawyer|attorney|lawsuit|legal action|sue|suing|court|solicitor|regulator|ombudsman)\b", re.I)
_ABUSE = re.compile(r"\b(idiots?|stupid|morons?|fuck\w*|shit\w*|kill|threat\w*|hate you)\b", re.I)
_SECURITY = re.compile(r"\b(fraud\w*|hacked|breach|stolen|unauthori[sz]ed|phishing|identity theft)\b", re.I)
_REFUND = re.compile(r"\b(refund|money back|reimburse|charged twice|double charged|overcharged|compensat)", re.I)
_NAMED_ID = re.compile(r"\b[A-Z]{1,4}-\d{2,}\b")
_AMOUNT = re.compile(r"(?:\$|usd\s?)(\d+(?:,\d{3})*(?:\.\d{1,2})?)|(\d+(?:\.\d{1,2})?)\s?(?:usd|dollars)\b", re.I)


def _ticket_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = next((item[k] for k in ("id", "ticket_id", "ticket") if isinstance(item.get(k), str | int)), None)
        return None if value is None else str(value)
    return item if isinstance(item, str) else None


def _priority(item: Any) -> int:
    return _RANK.get(str(item.get("priority", "")).lower(), 2) if isinstance(item, dict) else 2


def _targets(conv: Conversation, optimizer: bool) -> list[str]:
    listing = conv.last_ok("list_tickets")
    if listing is None:
        return []
    items = [i for i in items_in(listing.result) if _ticket_id(i)]
    items = [i for i in items if not isinstance(i, dict) or str(i.get("status", "open")).lower() == "open"]
    # A step that names tickets by id (one branch of a fan-out) works on those; else the goal's names count.
    scope = conv.instruction if _NAMED_ID.search(conv.instruction) else conv.goal
    named = [i for i in items if (_ticket_id(i) or "") in scope]
    if named:
        items = named
    else:
        # A ticket the goal names by id may be past the listing's first page: it is read directly.
        unlisted = [t for t in dict.fromkeys(_NAMED_ID.findall(scope))
                    if not any(_ticket_id(i) == t for i in items_in(listing.result))]
        if unlisted:
            return unlisted[: MAX_TICKETS if optimizer else 3]
    ranked = sorted(items, key=_priority)  # stable: the listing's order breaks ties
    if optimizer:
        urgent = [i for i in ranked if _priority(i) <= 1]
        ranked = urgent or ranked
    return [str(_ticket_id(i)) for i in ranked[: MAX_TICKETS if optimizer else 3]]


def _ticket(conv: Conversation, ticket_id: str) -> Any:
    obs = next((o for o in conv.calls("get_ticket") if o.ok and str(o.args.get("ticket_id")) == ticket_id), None)
    return None if obs is None else obs.result


def _texts(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_texts(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_texts(v) for v in value)
    return ""


def refund_cap(conv: Conversation) -> float:
    """The refund cap: from ``resolve_ticket``'s schema or description, or a refusal; else a small default."""
    found = []
    prop = conv.properties("resolve_ticket").get("refund_usd", {})
    if isinstance(prop, dict):
        for key in ("maximum", "exclusiveMaximum"):
            if isinstance(prop.get(key), int | float):
                found.append(float(prop[key]))
    texts = [str(conv.tools.get("resolve_ticket", {}).get("description", ""))]
    texts += [o.error for o in conv.calls("resolve_ticket") if not o.ok]
    for text in texts:
        for m in re.finditer(r"(?:cap|limit|at most|up to|maximum|max|ceiling|above|over|exceeds?)\D{0,30}?\$\s?"
                             r"(\d+(?:\.\d+)?)", text, re.I):
            found.append(float(m.group(1)))
    return min(found) if found else DEFAULT_REFUND_CAP_USD


def assess(ticket: Any, cap: float) -> tuple[str, float, str]:
    """``("resolve", refund, message)`` or ``("escalate", 0, reason)`` for one ticket."""
    # Only what the customer wrote is screened: a customer named "Sue" is not a legal threat.
    written = ticket.get("customer_message") or {k: ticket.get(k) for k in ("subject", "body", "message", "text")} \
        if isinstance(ticket, dict) else ticket
    text = _texts(written) or _texts(ticket)
    own_cap = find_number(ticket, "refundable_usd", "refund_cap_usd")
    cap = min(cap, own_cap) if own_cap is not None else cap
    for pattern, reason in ((_INJECTION, "the ticket text contains instructions aimed at the agent; not acted on"),
                            (_SECURITY, "possible fraud or security issue"),
                            (_LEGAL, "legal language; needs a person"),
                            (_ABUSE, "abusive or threatening language; needs a person")):
        if pattern.search(text):
            return "escalate", 0.0, reason
    asked = find_number(ticket, "requested_refund_usd", "refund_requested_usd", contains="refund",
                        exclude=("total", "refunded", "cap", "refundable")) or 0.0
    if not asked and _REFUND.search(text):
        amounts = [float((a or b).replace(",", "")) for a, b in _AMOUNT.findall(text)]
        asked = max(amounts) if amounts else 0.0
    if asked > cap:
        return "escalate", 0.0, f"refund of ${asked:g} asked, above the ${cap:g} cap"
    subject = ticket.get("subject") if isinstance(ticket, dict) else None
    message = ("Thank you for contacting us" + (f" about \"{str(subject)[:80]}\"" if subject else "") + ". "
               + (f"We have refunded ${asked:g}. " if asked else "We are looking into this and will keep you updated. ")
               + "Sorry for the trouble.")
    return "resolve", round(asked, 2), message


def _handled(conv: Conversation, ticket_id: str) -> bool:
    for name in ("resolve_ticket", "escalate_ticket"):
        for o in conv.calls(name):
            if str(o.args.get("ticket_id")) == ticket_id and (o.ok or name == "escalate_ticket"):
                return True
    return False


def support_next(conv: Conversation, goal: Any, role: str, verify: bool) -> list[Call]:
    """The next calls: the listing; then every target ticket not yet read, at once; then, for the optimizer,
    every resolution or escalation decided, at once (as models make parallel calls). One call per turn would
    not fit five tickets (read + act each) into an agent's tool rounds."""
    if conv.last_ok("list_tickets") is None:
        if conv.calls("list_tickets") or not conv.offered("list_tickets"):
            return []
        wanted: dict[str, Any] = {"status": "open"} if "status" in conv.properties("list_tickets") else {}
        return [conv.call("list_tickets", **wanted)]
    optimizer = role == "optimizer" and conv.offered("resolve_ticket")
    reads: list[Call] = []
    acts: list[Call] = []
    for ticket_id in _targets(conv, optimizer):
        if _handled(conv, ticket_id):
            continue
        ticket = _ticket(conv, ticket_id)
        if ticket is None:
            read = conv.call("get_ticket", ticket_id=ticket_id)
            if conv.offered("get_ticket") and not conv.made(read):
                reads.append(read)
            continue
        if not optimizer:
            continue
        refused = [o for o in conv.calls("resolve_ticket") if str(o.args.get("ticket_id")) == ticket_id]
        action, refund, text = assess(ticket, refund_cap(conv))
        if refused:
            action, text = "escalate", f"resolution was {refused[-1].status}: {refused[-1].error[:200]}"
        if action == "resolve":
            args: dict[str, Any] = {"ticket_id": ticket_id, "resolution": text}
            if refund and "refund_usd" in conv.properties("resolve_ticket"):
                args["refund_usd"] = refund
            acts.append(Call(name="resolve_ticket", args=args))
        elif conv.offered("escalate_ticket"):
            acts.append(conv.call("escalate_ticket", ticket_id=ticket_id, reason=text))
    if reads or acts:
        return reads or acts
    if goal.notify and conv.offered("notify_operations") and not conv.calls("notify_operations"):
        summary, _, _ = support_finding(conv, goal, role, verify)
        return [conv.call("notify_operations", message=summary[:500], severity="warning")]
    return []


def support_finding(conv: Conversation, goal: Any, role: str, verify: bool) -> tuple[str, list[str], float]:
    listing = conv.last_ok("list_tickets")
    if listing is None:
        return "Could not list the tickets; nothing was changed.", ["Check the ticket system."], 0.3
    items = items_in(listing.result)
    total = find_number(listing.result, "total", "count")
    counts: dict[str, int] = {}
    for item in items:
        if isinstance(item, dict):
            p = str(item.get("priority", "unknown"))
            counts[p] = counts.get(p, 0) + 1
    by_priority = ", ".join(f"{n} {p}" for p, n in sorted(counts.items(), key=lambda kv: _RANK.get(kv[0], 2)))
    resolved = [o for o in conv.calls("resolve_ticket") if o.ok]
    escalated = [o for o in conv.calls("escalate_ticket") if o.ok]
    refunds = sum(float(o.args.get("refund_usd") or 0) for o in resolved)
    summary = f"{total or len(items):g} tickets" + (f" ({by_priority} of those listed)" if by_priority else "") + "."
    if role == "optimizer":
        summary += (f" Resolved {len(resolved)} (refunds ${refunds:g} in total), escalated {len(escalated)}: "
                    + ", ".join(f"{o.args.get('ticket_id')} ({o.args.get('reason')})" for o in escalated[:5]) + ".")
        recs = ["A person should review the escalated tickets."] if escalated else []
        return summary, recs, 0.7
    cap = refund_cap(conv)
    recs = []
    for ticket_id in _targets(conv, False):
        ticket = _ticket(conv, ticket_id)
        if ticket is not None:
            action, refund, why = assess(ticket, cap)
            recs.append(f"{ticket_id}: " + (f"resolve, refund ${refund:g}" if action == "resolve" and refund
                                           else "resolve" if action == "resolve" else f"escalate ({why})"))
    return summary + (" Read: " + "; ".join(recs) + "." if recs else ""), recs, 0.75


# -- a part of a request about tickets -------------------------------------------------------------------------

_PRIORITY_WORDS = re.compile(r"\b(urgent|high|normal|low)(?:[- ]priority)?\b", re.I)
# Where a request names a topic: "tickets about X", "the X tickets", "everyone who X", "tickets that X".
_TOPIC = [
    re.compile(r"\b(?:about|regarding|concerning|mentioning|that mention|re:)\s+(.+)$", re.I),
    re.compile(r"\b(?:tickets?|requests?|complaints?|cases?)\s+(?:that|which|where|whose|from customers who)\s+(.+)$",
               re.I),
    re.compile(r"\b(?:everyone|anyone|everybody|customers?|people|those|all)\s+(?:who|that|whose)\s+(.+)$", re.I),
    re.compile(r"((?:[\w-]+\s+){1,3})(?:tickets?|requests?|complaints?|cases?)\b", re.I),
]
_TOPIC_END = re.compile(r"\s+(?:to (?:a |an |the )?(?:person|human|someone|people|staff|team|agent)\b|for now\b|"
                        r"and (?:let|tell|inform|close|resolve|refund|escalate)\b|so (?:that )?\b|because\b|"
                        r"then\b|in the (?:support|customer) (?:queue|inbox)|today\b)|[,;.]", re.I)
_TOPIC_STOP = {"the", "a", "an", "all", "every", "any", "open", "new", "our", "my", "these", "those", "this", "that",
               "support", "customer", "customers", "them", "their", "priority", "urgent", "high", "normal", "low",
               "of", "in", "on", "for", "just", "remaining", "other", "others", "pending", "close", "resolve",
               "refund", "escalate", "hand", "handle", "answer", "process", "work", "through", "got", "get", "have",
               "had", "has", "who", "they", "it", "its", "even", "though", "is", "are", "was", "were", "asked", "item",
               "items", "order", "orders", "product", "products", "thing", "issue", "issues", "problem", "where",
               "about", "said", "say", "says", "arrived", "arrive", "came", "come", "received", "bought",
               "placed", "ordered", "wants", "want", "needs", "need", "gets"}


def priority_filter(text: str) -> set[str]:
    """Priorities a request limits itself to ("the high priority refund requests", "anything urgent")."""
    return {m.group(1).lower() for m in _PRIORITY_WORDS.finditer(text)
            if m.group(0).lower() != "normal" or "priority" in m.group(0).lower()}


def topic_words(clause: str) -> list[str]:
    """The topic a clause picks tickets by, as groups of stemmed words ("broken or damaged" is one group,
    written "broken|damag"), or none when it picks none."""
    stop = {stem(s) for s in _TOPIC_STOP}

    def content(token: str) -> set[str]:
        return {w for w in words(token) if w not in stop and not w.isdigit()}

    for pattern in _TOPIC:
        m = pattern.search(clause)
        if not m:
            continue
        tokens = re.findall(r"[A-Za-z0-9']+", _TOPIC_END.split(m.group(1))[0])
        groups: list[set[str]] = []
        i = 0
        while i < len(tokens):
            if tokens[i].lower() == "or" and groups and i + 1 < len(tokens) and content(tokens[i + 1]):
                groups[-1] |= content(tokens[i + 1])
                i += 2
                continue
            if content(tokens[i]):
                groups.append(content(tokens[i]))
            i += 1
        found = ["|".join(sorted(g)) for g in groups]
        if found:
            return list(dict.fromkeys(found))
    return []


def listed_open(conv: Conversation, priorities: set[str]) -> list[dict[str, Any]]:
    listing = conv.last_ok("list_tickets")
    items = [i for i in items_in(listing.result if listing else None) if isinstance(i, dict) and _ticket_id(i)]
    items = [i for i in items if str(i.get("status", "open")).lower() == "open"]
    if priorities:
        items = [i for i in items if str(i.get("priority", "")).lower() in priorities]
    return sorted(items, key=_priority)


def pick_by_topic(topic: list[str], tickets: dict[str, Any]) -> list[str]:
    """The tickets whose subject and message are about the topic: those sharing at least half of its weight, each
    word group ("late|miss") weighing as much as its rarest word is rare among the tickets read (IDF). A ticket
    sharing only a common word ("wrong" of "the wrong colour", with a "Wrong size" ticket) is not picked."""
    said: dict[str, set[str]] = {}
    for ticket_id, ticket in tickets.items():
        text = _texts({k: ticket.get(k) for k in ("subject", "body", "customer_message")}) \
            if isinstance(ticket, dict) else _texts(ticket)
        if isinstance(ticket, dict) and (find_number(ticket, "requested_refund_usd") or 0) > 0:
            text += " refund request"
        said[ticket_id] = set(words(text))
    weight = {}
    for group in topic:
        df = [sum(w in s for s in said.values()) for w in group.split("|")]
        weight[group] = max((math.log(1 + len(said) / n) for n in df if n), default=0.0)
    total = sum(weight.values())
    picked = []
    for ticket_id, ws in said.items():
        share = sum(weight[g] for g in topic if ws & set(g.split("|")))
        if share > 0 and share >= total / 2 - 1e-9:
            picked.append(ticket_id)
    return picked


def ticket_read(conv: Conversation, ticket_id: str) -> tuple[Any, str | None]:
    """A ticket read in this step, and the error when reading it failed (it does not exist)."""
    ticket = _ticket(conv, ticket_id)
    if ticket is not None:
        return ticket, None
    failed = next((o for o in conv.calls("get_ticket") if str(o.args.get("ticket_id")) == ticket_id and not o.ok), None)
    return None, (failed.error or failed.status) if failed else None


_TELL = re.compile(r"\b(?:let (?:them|those customers|the customers?|him|her|everyone) know|tell (?:them|those customers|"
                   r"the customers?|him|her|everyone)|inform (?:them|the customers?))\s+(?:that\s+)?(.+)$", re.I)


def ticket_call(conv: Conversation, intent: Any, ticket_id: str, ticket: Any) -> Call | None:
    """The resolution or escalation one ticket gets for an intent: asked escalations escalate; a ticket that
    instructs the agent, threatens or claims fraud is escalated whatever was asked; a refund is paid only when the
    request asks for one (or to handle the ticket) and within the cap, else escalated; "close" resolves without
    money."""
    if _handled(conv, ticket_id):
        return None
    action, refund, text = assess(ticket, refund_cap(conv))
    refused = [o for o in conv.calls("resolve_ticket") if str(o.args.get("ticket_id")) == ticket_id]
    asked = set(intent.actions)
    # Escalation asked as the point of the request hands every target on; beside other asks ("refund what is fair,
    # escalate the rest") it is for what cannot be settled.
    if intent.action == "escalate":
        reason = ". ".join([*intent.context, intent.clause])[:300]
        return conv.call("escalate_ticket", ticket_id=ticket_id, reason=f"Asked: {reason}")
    flagged = action == "escalate" and not text.startswith("refund of")
    # "Close" ends a ticket; "resolve", "handle", "refund" settle it, with the money asked when policy allows.
    closing = bool(re.search(r"\bclos\w*|\bmark\b", " ".join([intent.clause, *intent.extra]), re.I))
    wants_money = bool(asked & {"refund", "fix", "report"}) or ("resolve" in asked and not closing)
    if refused or flagged or (action == "escalate" and wants_money):
        why = f"resolution was {refused[-1].status}: {refused[-1].error[:200]}" if refused else text
        return conv.call("escalate_ticket", ticket_id=ticket_id, reason=why) if conv.offered("escalate_ticket") else None
    subject = ticket.get("subject") if isinstance(ticket, dict) else None
    told = _TELL.search(" ".join([intent.clause, *intent.extra]))
    message = "Thank you for contacting us" + (f" about \"{str(subject)[:80]}\"" if subject else "") + ". "
    paid = round(refund, 2) if wants_money and action == "resolve" else 0.0
    if paid:
        message += f"We have refunded ${paid:g}. "
    if told:
        news = told.group(1).strip().rstrip(".!")
        message += news[:1].upper() + news[1:] + ". "
    elif not paid:
        message += "We have looked into this and it is taken care of. "
    args: dict[str, Any] = {"ticket_id": ticket_id, "resolution": message + "Sorry for the trouble."}
    if paid and "refund_usd" in conv.properties("resolve_ticket"):
        args["refund_usd"] = paid
    return Call(name="resolve_ticket", args=args)
