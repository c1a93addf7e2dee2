"""The strategist's rules for a request read as parts: a plan of steps per part, a review that acts again only on a
part whose verification missed, and a decision whose outcome comes from each part's result.

**Plan.** Each part that asks for a change gets an optimizer step and, for services and datasets, an analyst
step after it that verifies with a fresh read; each question gets an analyst step. A request with no part the
tools can do gets one analyst step that reads what exists and says so.

**Outcome.** Per part, from the findings' tags (see ``steps``): a change verified met (or a ticket handled) is a
success, a change verified missed is partial, a part that could not be done is a failure, and a report or a part
that needed no change counts for neither. All successes → ``achieved`` (``escalated`` when every change was an
escalation); some → ``partially_achieved``; none but failures → ``not_achieved``; neither → ``no_action_needed``.
A request no tool can do is ``not_achieved``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentmesh.models.offline.conversation import Conversation
from agentmesh.plugins.operations.offline.intents import Intent, parse_request

__all__ = ["TAG", "has_parts", "part_decide", "part_plan", "part_review"]

TAG = re.compile(r"\[part (\d+)/(\d+) (done|partly done|not done|no change|escalated|met|missed|report|unsupported)\]")
MAX_PARTS = 4
_VERB = {"scale_up": "Add capacity to", "scale_down": "Trim", "target": "Bring within the target", "fix": "Fix",
         "rollback": "Roll back", "restart": "Restart", "dedupe": "Dedupe", "clean": "Clean", "resolve": "Resolve",
         "refund": "Refund and resolve", "escalate": "Escalate", "report": "Report on"}


def _instruction(k: int, n: int, intent: Intent, verb: str) -> str:
    said = ". ".join([*intent.context, intent.clause, *intent.extra])
    bounds = intent.bounds.describe()
    return (f"Part {k} of {n}: {verb} what this part of the request refers to, resolved from what the tools list "
            f"(names, descriptions, ticket text); change nothing it does not name. The part: \"{said[:600]}\""
            + (f" (target: {bounds})" if bounds else ""))


def part_plan(conv: Conversation) -> dict[str, Any]:
    text = conv.goal.strip() or "(no goal given)"
    request = parse_request(text)
    steps: list[dict[str, Any]] = []

    def add(role: str, instruction: str, depends_on: list[str] | None = None) -> str:
        sid = f"s{len(steps) + 1}"
        steps.append({"id": sid, "role": role, "instruction": instruction[:2000], "depends_on": depends_on or []})
        return sid

    intents = request.intents
    if not intents:
        add("analyst", "Part 0 of 0: list the services, datasets and tickets and report whether any of them is what "
                       f"the request is about; change nothing. The request: \"{text[:600]}\"")
        return {"objective": f"{text[:900]} — checked against what the tools reach", "steps": steps}
    n = len(intents)
    for k, intent in enumerate(intents[:MAX_PARTS], start=1):
        if not intent.act:
            add("analyst", _instruction(k, n, intent, "Investigate and report, changing nothing, on"))
            continue
        act = add("optimizer", _instruction(k, n, intent, _VERB.get(intent.action, "Act on")))
        if intent.domain != "support":
            add("analyst", f"Part {k} of {n}: verify after the change: re-read what part {k} refers to and report "
                           f"whether its target is met.", [act])
    parts = "; ".join(f"({k}) {i.clause[:120]}" for k, i in enumerate(intents, start=1))
    return {"objective": f"{text[:600]} — in {n} part{'s' if n > 1 else ''}: {parts}"[:1000], "steps": steps}


def has_parts(conv: Conversation) -> bool:
    return bool(TAG.search(conv.sections.get("Findings so far", ""))) or bool(
        re.search(r"\bPart \d+ of \d+:", conv.sections.get("Plan", "")))


def _part_findings(conv: Conversation) -> list[tuple[int, str, str, str]]:
    """(part, status, step id, summary without its tag) of each tagged finding, in order."""
    found = []
    for line in conv.sections.get("Findings so far", "").splitlines():
        m = re.match(r"\[(\S+) (\S+)\] (.*)", line)
        if not m:
            continue
        tag = TAG.search(m.group(3))
        if tag:
            found.append((int(tag.group(1)), tag.group(3), m.group(1), TAG.sub("", m.group(3)).strip()))
    return found


def _results(conv: Conversation) -> dict[int, tuple[str, list[str]]]:
    """Each part's result (``success``, ``partial``, ``failure``, ``neutral``, ``unsupported``) and its sentences."""
    results: dict[int, tuple[str, list[str]]] = {}
    acted: dict[int, str] = {}
    for part, status, _, text in _part_findings(conv):
        result, sentences = results.get(part, ("neutral", []))
        if status in ("met", "missed"):
            if acted.get(part) in ("done", "partly done", "escalated"):
                result = "success" if status == "met" and acted[part] != "partly done" else "partial"
                sentences = [*sentences, text]
        elif status in ("no change", "report") and acted.get(part) in ("done", "partly done", "escalated"):
            continue  # a later round that found nothing more to do does not undo the change made before it
        elif status == "not done" and acted.get(part) in ("done", "partly done", "escalated"):
            result, sentences = "partial", [*sentences, text]  # a change was made; a later round could not finish
        else:
            acted[part] = status
            result = {"done": "success", "escalated": "success", "partly done": "partial", "not done": "failure",
                      "unsupported": "unsupported"}.get(status, "neutral")
            sentences = [text]
        results[part] = (result, sentences)
    return results


def _actions(conv: Conversation) -> list[tuple[str, str, str]]:
    acts = []
    for line in conv.sections.get("Actions taken", "").splitlines():
        m = re.match(r"(\w+) (.*) -> (\w+)(?::\s*(.*))?$", line.strip())
        if m:
            acts.append((m.group(1), m.group(3), f"{m.group(1)} {m.group(2)}" + (f" ({m.group(4)})" if m.group(4)
                                                                                  else "")))
    return acts


def part_decide(conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
    request = parse_request(conv.goal)
    results = _results(conv)
    kinds = [r for r, _ in results.values()]
    actions = _actions(conv)
    writes = [(tool, text) for tool, status, text in actions if status == "ok"]
    if "unsupported" in kinds or not request.intents:
        outcome = "not_achieved"
    elif kinds and all(k == "success" for k in kinds if k != "neutral") and "success" in kinds:
        escalations_only = writes and all("escalat" in tool for tool, _ in writes)
        outcome = "escalated" if escalations_only else "achieved"
    elif "success" in kinds or "partial" in kinds:
        outcome = "partially_achieved"
    elif "failure" in kinds:
        outcome = "not_achieved"
    else:
        outcome = "no_action_needed"
    if outcome == "achieved" and not writes:
        outcome = "no_action_needed"
    sentences = []
    for part in sorted(results):
        _, said = results[part]
        sentences.append(" ".join(said))
    missing = [k for k in range(1, len(request.intents) + 1) if k not in results]
    for k in missing:
        sentences.append(f"Part {k} (\"{request.intents[k - 1].clause[:100]}\") was not worked on; nothing changed "
                         f"for it.")
    summary = " ".join(sentences) + f" Outcome: {outcome.replace('_', ' ')}."
    cited = [f"[{sid}] {text}" for _, _, sid, text in _part_findings(conv)[-8:]]
    rationale = "Each part of the request, from its step's reads: " + (" ".join(cited) or "none reported.")
    if actions:
        rationale += " Actions: " + "; ".join(t for _, _, t in actions[:8]) + "."
    risks = [f"{text} was {status}" for _, status, text in actions if status not in ("ok", "pending")][:4]
    risks += [f"part {p}: {' '.join(s)[:300]}" for p, (r, s) in sorted(results.items()) if r in ("failure", "partial")]
    confidence = {"achieved": 0.8, "no_action_needed": 0.7, "escalated": 0.6, "partially_achieved": 0.5,
                  "not_achieved": 0.4}[outcome]
    if simple:
        rationale, risks = rationale[:500], risks[:3]
    return {"summary": summary[:2000], "rationale": rationale[:4000], "confidence": confidence,
            "open_risks": [r[:500] for r in risks[:10]], "outcome": outcome}


def part_review(conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
    """Decide, unless a change to a service was verified missed and rounds remain: then act on that part again."""
    m = re.search(r"(\d+)\s*of\s*(\d+)", conv.sections.get("Round", ""))
    number, total = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
    request = parse_request(conv.goal)
    again = [p for p, (r, _) in _results(conv).items()
             if r == "partial" and 0 < p <= len(request.intents) and request.intents[p - 1].domain == "ops"]
    if simple or number >= total or not again:
        return {"verdict": "decide", "reason": "Every part has a result; no further step would change it.",
                "new_steps": []}
    try:
        taken = {str(s.get("id")) for s in json.loads(conv.sections.get("Plan", "{}")).get("steps", [])}
    except (ValueError, AttributeError):
        taken = set()
    steps = []
    n = len(request.intents)
    # Constraints the plan put on its steps (from past decisions) bind the steps a replan adds, too.
    bound = re.search(r"Past decisions bind this step: [^\"]*?\.(?=\"|$)", conv.sections.get("Plan", ""))
    carried = f" {bound.group(0)}" if bound else ""
    for k in again[:3]:
        act_id = next(f"r{number}s{i}" for i in range(1, 99) if f"r{number}s{i}" not in taken)
        taken.add(act_id)
        check_id = next(f"r{number}s{i}" for i in range(1, 99) if f"r{number}s{i}" not in taken)
        taken.add(check_id)
        steps += [{"id": act_id, "role": "optimizer", "depends_on": [],
                   "instruction": _instruction(k, n, request.intents[k - 1], "Act again, from the current state, on")
                   + carried},
                  {"id": check_id, "role": "analyst", "depends_on": [act_id],
                   "instruction": f"Part {k} of {n}: verify after the change: re-read what part {k} refers to and "
                                  f"report whether its target is met."}]
    return {"verdict": "replan", "reason": f"Round {number} of {total}: part(s) {again} missed their target.",
            "new_steps": steps}
