"""A worker step on one part of a request ("Part 2 of 3: …" in its instruction): list what exists, resolve what
the part refers to, read it, act on it (optimizer) or verify it (analyst after the optimizer), and report.

Every step re-reads the goal into the same intents (``parse_request`` is deterministic) and takes its own part, so
the plan carries only the part's number. A step whose part refers to nothing it can resolve changes nothing and
says so, naming what exists. The finding's summary starts with a tag the decision reads:

    [part 2/3 done]      the optimizer made the change(s)      [part 2/3 met]     a verification read: target met
    [part 2/3 not done]  it could not (unknown, refused…)      [part 2/3 missed]  … target not met
    [part 2/3 no change] nothing needed or nothing would help  [part 2/3 report]  a report, nothing changed
    [part 0/0 unsupported] no part of the request is something the tools do
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from agentmesh.models.offline.conversation import Call, Conversation, find_number, items_in
from agentmesh.plugins.operations.offline import data, ops, support
from agentmesh.plugins.operations.offline.intents import Intent, Request, parse_request
from agentmesh.plugins.operations.offline.resolve import PLURAL, EntityIndex, Resolution, entity_index

__all__ = ["PART", "Part", "part_finding", "part_next", "part_of"]

PART = re.compile(r"\bpart (\d+) of (\d+)\b", re.I)
MAX_PART_CALLS = 40
_KINDS = {"ops": ("service",), "data": ("dataset",), "support": ("ticket",), "any": ("service", "dataset")}
_LISTING = {"service": "list_services", "dataset": "list_datasets", "ticket": "list_tickets"}
_READ = {"service": "get_service_metrics", "dataset": "profile_dataset"}
_ARG = {"service": "service", "dataset": "dataset"}
_NOUN_PHRASE = re.compile(r"^(?:the|our|my|a|an|that|this|those|these)\s+\S", re.I)
_SUBJECT = re.compile(r"^(?:(?:so|and|but|hey|well)\s+)*(.+?)\s+(?:is|are|was|were|keeps?|has|have|had|looks?|seems?|"
                      r"feels?|got|gets|started|throws?|went|needs?|must|should|'s)\b", re.I)


@dataclass(kw_only=True)
class Part:
    """The part of the request a step works on."""

    request: Request
    """The whole request."""
    index: int
    """1-based; 0 when the request has no part the tools can do."""
    intent: Intent | None
    """The part's intent (None for index 0)."""
    role: str
    """The step's role."""
    verify: bool
    """The step verifies after a change."""

    @property
    def tag(self) -> str:
        return f"part {self.index}/{len(self.request.intents)}"


@dataclass(kw_only=True)
class Targets:
    """What one part refers to."""

    kind: str = ""
    """``service``, ``dataset`` or ``ticket``; empty when nothing resolved."""
    names: list[str] = field(default_factory=list)
    """The entities acted on or read."""
    problem: str = ""
    """Why nothing can be acted on: an unknown name, an ambiguous or unmatched phrase."""
    reads: list[Call] = field(default_factory=list)
    """Reads still needed before the targets are known (ticket messages)."""


def part_of(conv: Conversation, role: str, verify: bool) -> Part | None:
    """The part a step works on, when its instruction names one that the goal has."""
    m = PART.search(conv.instruction)
    if not m:
        return None
    request = parse_request(conv.goal)
    k, n = int(m.group(1)), int(m.group(2))
    if n != len(request.intents) or k > n:
        return None
    return Part(request=request, index=k, intent=request.intents[k - 1] if k else None, role=role, verify=verify)


def _kinds(intent: Intent) -> tuple[str, ...]:
    return _KINDS.get(intent.domain, _KINDS["any"])


def _listings(conv: Conversation, kinds: tuple[str, ...]) -> list[Call]:
    calls = []
    for kind in kinds:
        tool = _LISTING[kind]
        if conv.offered(tool) and not conv.calls(tool):
            wanted: dict[str, Any] = {"status": "open"} if kind == "ticket" and "status" in conv.properties(tool) else {}
            calls.append(conv.call(tool, **wanted))
    return calls


def _phrase(text: str) -> str:
    m = _SUBJECT.match(text.strip())
    return (m.group(1) if m else text).strip()[:80]


def _resolve_names(index: EntityIndex, intent: Intent, kinds: tuple[str, ...]) -> tuple[Resolution | None, str]:
    """The first referring text that names something (each "and"-joined object of the clause on its own), and
    the phrase the part refers by."""
    texts = intent.referring_texts()
    ambiguous: Resolution | None = None
    for i, text in enumerate(texts):
        segments = re.split(r"\s*(?:,|\band\b|&|\bplus\b|\bas well as\b)\s*", text) if i == 0 else [text]
        found = Resolution(kind="/".join(kinds), phrase=text)
        unmatched = []
        for segment in segments if len(segments) > 1 else [text]:
            r = index.resolve(segment, kinds=kinds)
            if len(segments) > 1 and not (r.names or r.unknown or r.candidates) and _NOUN_PHRASE.match(segment):
                unmatched.append(segment)
            found.names += [n for n in r.names if n not in found.names]
            found.unknown += [u for u in r.unknown if u not in found.unknown]
            if r.candidates and ambiguous is None:
                ambiguous = r
        if found.names or found.unknown:
            # An object of the ask that names nothing, beside one that does ("the returns table"), is unknown too.
            found.unknown += [f"\"{u}\"" for u in unmatched] if found.names else []
            return found, text
    return ambiguous, _phrase(texts[-1] if len(texts) > 1 else texts[0]) if texts else ""


def _known(index: EntityIndex, kinds: tuple[str, ...]) -> str:
    parts = []
    for kind in kinds:
        names = index.names(kind)
        if names:
            parts.append(f"the {PLURAL[kind]} that exist are {', '.join(sorted(names))}")
    return "; ".join(parts)


def resolve_targets(conv: Conversation, part: Part, index: EntityIndex) -> Targets:
    intent = part.intent
    assert intent is not None
    kinds = _kinds(intent)
    if kinds == ("ticket",):
        return _ticket_targets(conv, part, index)
    if part.verify:
        changed = _changed(conv, part, index)
        if changed is not None:
            return changed
    found, phrase = _resolve_names(index, intent, kinds)
    noun = " or ".join(kinds)
    problem = ""
    if found is not None and found.unknown:
        missing = ", ".join(found.unknown)
        problem = f"there is no {noun} named {missing}: {missing} does not exist ({_known(index, kinds)})"
        if not found.names:
            return Targets(problem=problem)
    if found is not None and found.names:
        kind = next(e.kind for e in index.entities if e.name == found.names[0])
        names = [n for n in found.names if (e := index.get(n)) is not None and e.kind == kind]
        return Targets(kind=kind, names=names, problem=problem)
    if found is not None and found.candidates:
        return Targets(problem=f"\"{phrase}\" could mean {' or '.join(found.candidates)}; not knowing which, "
                               f"nothing was changed")
    by_state = _by_state(index, intent)
    if by_state is not None:
        return by_state
    if not intent.act:
        return Targets()
    return Targets(problem=f"no {noun} matches \"{phrase}\": none of them is what the request names "
                           f"({_known(index, kinds)})")


def _changed(conv: Conversation, part: Part, index: EntityIndex) -> Targets | None:
    """For a verification: the entities the part's change acted on, as its finding names them (the world has moved
    since, so what "whatever is idle" picked then is not what it picks now)."""
    for line in reversed(conv.sections.get("Findings so far", "").splitlines()):
        if f"[{part.tag} done]" not in line and f"[{part.tag} partly done]" not in line:
            continue
        acted = re.split(r"Nothing (?:else )?was changed", line)[0]
        names = [e for e in index.entities if e.kind in ("service", "dataset")
                 and re.search(rf"(?<![\w-]){re.escape(e.name)}(?![\w-])", acted)]
        if names:
            kind = names[0].kind
            return Targets(kind=kind, names=[e.name for e in names if e.kind == kind])
    return None


_STATE_WORDS = [
    (re.compile(r"\b(?:idle|over-?provisioned|spare|unused|under-?used|quiet)\b", re.I), {"over-provisioned"}),
    (re.compile(r"\b(?:overloaded|saturated|swamped|busy|slow|struggling|hot)\b", re.I), {"overloaded", "saturated"}),
    (re.compile(r"\b(?:erroring|failing|throwing errors|broken)\b", re.I), {"erroring"}),
    (re.compile(r"\b(?:unhealthy|degraded|on fire|in trouble|not healthy)\b", re.I),
     {"overloaded", "saturated", "erroring"}),
]
_BY_STATE = re.compile(r"\b(?:whatever|anything|everything|every (?:service|one)|all (?:the )?services|any services?|"
                       r"services?|the ones?|those)\s+(?:that|which|who)?\s*(?:is|are|'s|look|looks|seem|seems|sits?|"
                       r"runs?)?\s*(?:currently |now |mostly |sitting )?(.{0,30})", re.I)


def _by_state(index: EntityIndex, intent: Intent) -> Targets | None:
    """Services picked by what the listing says of them ("trim whatever is idle", "scale everything that is
    overloaded"), or None when the clause picks none that way."""
    m = _BY_STATE.search(intent.clause)
    if m is None or not index.of("service"):
        return None
    wanted = next((states for pattern, states in _STATE_WORDS if pattern.search(m.group(1))), None)
    if wanted is None:
        return None
    names = [e.name for e in index.of("service") if str(e.record.get("status", "")) in wanted]
    if not names:
        return Targets(problem=f"no service is {' or '.join(sorted(wanted))} right now")
    return Targets(kind="service", names=names)


def _ticket_targets(conv: Conversation, part: Part, index: EntityIndex) -> Targets:
    intent = part.intent
    assert intent is not None
    named = list(dict.fromkeys(t.upper() for t in re.findall(r"\b[A-Za-z]{1,4}-\d{2,}\b", intent.own_text)))
    if not named:
        named = list(dict.fromkeys(t.upper() for t in re.findall(r"\b[A-Za-z]{1,4}-\d{2,}\b", " ".join(intent.context))))
    if named:
        reads = [conv.call("get_ticket", ticket_id=t) for t in named
                 if not any(str(o.args.get("ticket_id")) == t for o in conv.calls("get_ticket"))]
        missing = [t for t in named if support.ticket_read(conv, t)[1] is not None]
        problem = (f"there is no ticket {', '.join(missing)}: {', '.join(missing)} does not exist"
                   if missing else "")
        return Targets(kind="ticket", names=[t for t in named if t not in missing], problem=problem, reads=reads)
    priorities = support.priority_filter(intent.text)
    listed = support.listed_open(conv, priorities)
    topic = support.topic_words(intent.clause)
    if topic:
        reads = [conv.call("get_ticket", ticket_id=str(i["id"])) for i in listed
                 if support.ticket_read(conv, str(i["id"]))[0] is None and not any(
                     str(o.args.get("ticket_id")) == str(i["id"]) for o in conv.calls("get_ticket"))]
        if reads:
            return Targets(kind="ticket", reads=reads)
        tickets = {str(i["id"]): support.ticket_read(conv, str(i["id"]))[0] or i for i in listed}
        picked = support.pick_by_topic(topic, tickets)
        if not picked:
            return Targets(kind="ticket", problem=f"no open ticket is about \"{' '.join(topic).replace('|', ' or ')}\" "
                                                  f"({len(listed)} open tickets read)")
        return Targets(kind="ticket", names=picked)
    optimizer = part.role == "optimizer"
    ranked = [str(i["id"]) for i in listed]
    if optimizer:
        urgent = [str(i["id"]) for i in listed if support._priority(i) <= 1]
        ranked = urgent or ranked
    names = ranked[: support.MAX_TICKETS if optimizer else 3]
    reads = [conv.call("get_ticket", ticket_id=t) for t in names if support.ticket_read(conv, t)[0] is None
             and not any(str(o.args.get("ticket_id")) == t for o in conv.calls("get_ticket"))]
    if not names and intent.act:
        return Targets(kind="ticket", problem="no open ticket matches the request")
    return Targets(kind="ticket", names=names, reads=reads)


def _raw(conv: Conversation, tool: str, arg: str, name: str) -> Any:
    obs = next((o for o in reversed(conv.calls(tool)) if o.ok and o.args.get(arg) == name), None)
    return None if obs is None else (obs.result if obs.result is not None else {})


def part_next(conv: Conversation, part: Part) -> list[Call]:
    """The next calls of this step, made in one turn; none when it is time for the finding."""
    if len(conv.observations) >= MAX_PART_CALLS:
        return []
    if part.intent is None:
        return _listings(conv, ("service", "dataset", "ticket"))
    intent = part.intent
    kinds = _kinds(intent)
    pending = _listings(conv, kinds)
    if pending:
        return pending
    index = entity_index(conv)
    targets = resolve_targets(conv, part, index)
    if targets.reads:
        return [c for c in targets.reads if conv.offered(c.name)]
    if targets.problem and not targets.names:
        return []
    if not targets.kind:
        return []  # a report on everything: the listings are enough
    if targets.kind == "ticket":
        return _ticket_calls(conv, part, targets)
    calls: list[Call] = []
    for name in targets.names:
        call = _entity_next(conv, part, targets.kind, name, index)
        if call is not None and not conv.made(call) and conv.offered(call.name):
            calls.append(call)
    if not calls and intent.notify and part.role == "optimizer" and conv.offered("notify_operations") \
            and not conv.calls("notify_operations") and not part.verify and any(
                o.ok and o.name in _WRITES for o in conv.observations):
        summary = _summary(conv, part)[:480]
        calls.append(conv.call("notify_operations", message=summary, severity="info"))
    return calls


_WRITES = ("scale_service", "restart_service", "rollback_service", "clean_dataset", "resolve_ticket",
           "escalate_ticket")


def _entity_next(conv: Conversation, part: Part, kind: str, name: str, index: EntityIndex) -> Call | None:
    intent = part.intent
    assert intent is not None
    read_tool = _READ[kind]
    raw = _raw(conv, read_tool, _ARG[kind], name)
    if raw is None:
        return conv.call(read_tool, **{_ARG[kind]: name})
    if part.role != "optimizer" or part.verify or not intent.act:
        return None
    if kind == "service":
        if any(o.ok and o.args.get("service") == name for t in _WRITES[:3] for o in conv.calls(t)):
            return None
        if any(not o.ok and o.args.get("service") == name for t in _WRITES[:3] for o in conv.calls(t)):
            return None
        call, _ = ops.service_plan(conv, intent, name, raw)
        return call
    entity = index.get(name)
    if entity is not None and entity.record.get("protected") is True:
        return None
    if any(o.args.get("dataset") == name for o in conv.calls("clean_dataset")):
        return None
    operations = data.operations_for(conv, raw, dedupe_only=intent.action == "dedupe")
    return conv.call("clean_dataset", dataset=name, operations=operations) if operations else None


def _ticket_calls(conv: Conversation, part: Part, targets: Targets) -> list[Call]:
    intent = part.intent
    if part.role != "optimizer" or not intent or not intent.act:
        return []
    calls = []
    for ticket_id in targets.names:
        ticket, _ = support.ticket_read(conv, ticket_id)
        if ticket is None:
            continue
        call = support.ticket_call(conv, intent, ticket_id, ticket)
        if call is not None and conv.offered(call.name) and not conv.made(call):
            calls.append(call)
    return calls


# -- the finding ---------------------------------------------------------------------------------------------------

def part_finding(conv: Conversation, part: Part) -> tuple[str, list[str], float]:
    summary = _summary(conv, part)
    recs = []
    if "[" + part.tag + " not done]" in summary:
        recs.append("Name the target as it exists, or have a person act.")
    return summary, recs, 0.7


def _summary(conv: Conversation, part: Part) -> str:
    if part.intent is None:
        return _unsupported(conv, part)
    intent = part.intent
    index = entity_index(conv)
    targets = resolve_targets(conv, part, index)
    ask = f"(\"{intent.clause[:160]}\")"
    if targets.problem and not targets.names:
        status = "not done" if intent.act else "report"
        return f"[{part.tag} {status}] {ask} Nothing was changed: {targets.problem}."
    if not targets.kind:
        return f"[{part.tag} report] {ask} {_fleet(conv, index)}"
    sentences: list[str] = []
    statuses: list[str] = []
    for name in targets.names:
        status, sentence = _entity_sentence(conv, part, targets.kind, name, index)
        statuses.append(status)
        sentences.append(sentence)
    if targets.problem:
        statuses.append("not done")
        sentences.append(f"Nothing else was changed: {targets.problem}.")
    notified = next((o for o in conv.calls("notify_operations") if o.ok), None)
    if notified is not None:
        sentences.append("Operations were notified.")
    return f"[{part.tag} {_overall(statuses, part)}] {ask} " + " ".join(sentences)


def _overall(statuses: list[str], part: Part) -> str:
    if part.verify:
        return "missed" if "missed" in statuses else "met"
    if part.intent is None or not part.intent.act or part.role != "optimizer":
        return "report"
    if all(s == "escalated" for s in statuses) and statuses:
        return "escalated"
    done = [s for s in statuses if s in ("done", "escalated")]
    if done and "not done" not in statuses:
        return "done"
    if done:
        return "partly done"
    if "not done" in statuses:
        return "not done"
    return "no change"


def _entity_sentence(conv: Conversation, part: Part, kind: str, name: str, index: EntityIndex) -> tuple[str, str]:
    if kind == "service":
        return _service_sentence(conv, part, name)
    if kind == "dataset":
        return _dataset_sentence(conv, part, name, index)
    return _ticket_sentence(conv, part, name)


def _service_sentence(conv: Conversation, part: Part, name: str) -> tuple[str, str]:
    intent = part.intent
    assert intent is not None
    raw = _raw(conv, "get_service_metrics", "service", name)
    if raw is None:
        return "not done", f"The metrics of {name} could not be read."
    m = ops.metrics(raw)
    state = f"{name} {raw.get('status', '')}: {ops._fmt(m)}".replace(" :", ":")
    if part.verify:
        met, why = ops.service_met(intent, raw)
        return ("met" if met else "missed"), f"Verified {state}; {'target met' if met else 'target missed'}: {why}."
    if part.role != "optimizer" or not intent.act:
        _, diagnosis = ops.service_plan(conv, intent, name, raw) if intent.act else (None, "")
        release = ops.release_text(raw)
        return "report", (f"{state} (memory {find_number(raw, 'memory_pct') or 0:g}%"
                          + (f", {release}" if release else "") + ")."
                          + (f" Diagnosis: {diagnosis}." if diagnosis and diagnosis != "simulating" else ""))
    done = next((o for t in _WRITES[:3] for o in conv.calls(t) if o.args.get("service") == name), None)
    if done is not None and done.ok:
        after = ops.metrics(done.result, "after")
        what = {"scale_service": f"Scaled {name} from {m['replicas']:g} to {done.args.get('replicas')} replicas",
                "restart_service": f"Restarted {name}",
                "rollback_service": f"Rolled {name} back from {raw.get('deployed_version')} to "
                                    f"{(done.result or {}).get('deployed_version', raw.get('previous_version'))}"}
        reason = _reason(conv, intent, name, raw)
        return "done", (f"{what[done.name]} because {reason}. Before: {ops._fmt(m)}; after: {ops._fmt(after)}.")
    if done is not None:
        return "not done", f"Did not change {name}: {done.name} was {done.status}: {done.error[:240]}."
    _, reason = ops.service_plan(conv, intent, name, raw)
    target = intent.bounds.latency_ms
    if target is not None and (m["p95"] or 0) > target:  # the ask stands unmet: nothing changed is a failure
        return "not done", f"Did not change {name} ({ops._fmt(m)}): {reason}."
    return "no change", f"No change to {name} ({ops._fmt(m)}): {reason}."


def _reason(conv: Conversation, intent: Intent, name: str, raw: Any) -> str:
    # The reason the plan gave for the change, replayed on the reads before it (the same rules, the same numbers).
    before = Conversation(tools=conv.tools, sections=conv.sections, step=conv.step, observations=[
        o for o in conv.observations if o.name not in _WRITES])
    _, reason = ops.service_plan(before, intent, name, raw)
    return reason if reason != "simulating" else "the simulations pointed at it"


def _dataset_sentence(conv: Conversation, part: Part, name: str, index: EntityIndex) -> tuple[str, str]:
    intent = part.intent
    assert intent is not None
    profile = _raw(conv, "profile_dataset", "dataset", name)
    entity = index.get(name)
    if profile is None:
        return "not done", f"{name} could not be profiled."
    state = data.describe(profile)
    if part.verify:
        remaining = data.remaining_for(intent.text, profile)
        if entity is not None and entity.record.get("protected") is True:
            return "missed", f"{name} is unchanged ({state}): it is protected by policy."
        return ("missed" if remaining else "met"), (f"Verified {name}: {state}; " + (
            f"target missed: {', '.join(remaining)} remain." if remaining else "target met."))
    if part.role != "optimizer" or not intent.act:
        return "report", f"{name}: {state}."
    if entity is not None and entity.record.get("protected") is True:
        return "not done", (f"Did not clean {name}: it is protected by policy and may only be profiled ({state}); "
                            f"a person who owns it has to do it.")
    cleaned = next((o for o in conv.calls("clean_dataset") if o.args.get("dataset") == name), None)
    if cleaned is None:
        return "no change", f"No change to {name} ({state}): no cleaning operation applies."
    if not cleaned.ok:
        return "not done", f"Did not clean {name}: {cleaned.status}: {cleaned.error[:240]}."
    version = find_number(cleaned.result, "version", "number", contains="version")
    return "done", (f"Cleaned {name} with {data.op_names(cleaned.args.get('operations'))}"
                    + (f" into version {version:g}" if version is not None else "")
                    + f"; before: {state}; after: {data.describe(cleaned.result)}.")


def _ticket_sentence(conv: Conversation, part: Part, ticket_id: str) -> tuple[str, str]:
    ticket, error = support.ticket_read(conv, ticket_id)
    subject = f" (\"{str(ticket.get('subject'))[:60]}\")" if isinstance(ticket, dict) and ticket.get("subject") else ""
    for name, label in (("resolve_ticket", "Resolved"), ("escalate_ticket", "Escalated")):
        obs = next((o for o in conv.calls(name) if str(o.args.get("ticket_id")) == ticket_id), None)
        if obs is not None and obs.ok:
            extra = (f" with a refund of ${obs.args.get('refund_usd'):g}" if obs.args.get("refund_usd") else
                     " without a refund") if name == "resolve_ticket" else f": {str(obs.args.get('reason'))[:160]}"
            return ("done" if name == "resolve_ticket" else "escalated"), f"{label} {ticket_id}{subject}{extra}."
        if obs is not None:
            return "not done", f"{label[:-1]} of {ticket_id} was {obs.status}: {obs.error[:200]}."
    if ticket is None:
        return "not done", f"{ticket_id} could not be read: {error or 'not found'}."
    return "report", f"{ticket_id}{subject}: {ticket.get('priority', '')} priority, {ticket.get('status', 'open')}." \
        if isinstance(ticket, dict) else f"{ticket_id} read."


def _fleet(conv: Conversation, index: EntityIndex) -> str:
    """A report on everything listed: what is not healthy, by name, in sentences."""
    sentences = []
    for e in index.of("service"):
        status = str(e.record.get("status", ""))
        if status and status != "healthy":
            sentences.append(f"{e.name} is {status} (p95 {e.record.get('p95_ms')} ms, CPU {e.record.get('cpu_pct')}%, "
                             f"error rate {float(e.record.get('error_rate') or 0):.1%}).")
    for e in index.of("dataset"):
        score = find_number(e.record, "quality_score")
        if score is not None and score < 90:
            sentences.append(f"Dataset {e.name} has a quality score of {score:g}.")
    listing = conv.last_ok("list_tickets")
    if listing is not None:
        total = find_number(listing.result, "total", "count")
        urgent = [str(i.get("id")) for i in items_in(listing.result) if isinstance(i, dict)
                  and str(i.get("priority")) == "urgent"]
        sentences.append(f"{total if total is not None else len(items_in(listing.result)):g} tickets are open"
                         + (f", urgent: {', '.join(urgent[:8])}" if urgent else "") + ".")
    healthy = [e.name for e in index.of("service") if str(e.record.get("status")) == "healthy"]
    if healthy:
        sentences.append(f"{len(healthy)} services are healthy.")
    return " ".join(sentences) or "Nothing that was read shows a problem."


def _unsupported(conv: Conversation, part: Part) -> str:
    asks = part.request.unsupported or [part.request.goal]
    return (f"[part 0/0 unsupported] agentmesh cannot do that: \"{'; '.join(asks)[:300]}\" is not something its "
            f"tools do (they read and change services, datasets and support tickets), and the request asks nothing "
            f"of those. Nothing was changed.")


def compact(value: Any, limit: int = 240) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"
