"""The strategist's rules: the plan of a request's parts (``outcome``) bound by past decisions; the review and the
decision of findings by part, or, for the findings of graphs whose steps name no part, by the words of the findings."""

from __future__ import annotations

import json
import re
from typing import Any

from agentmesh.models.offline.conversation import Conversation
from agentmesh.plugins.operations.offline.goals import GoalReading, read_goal
from agentmesh.plugins.operations.offline.outcome import has_parts, part_decide, part_plan, part_review

__all__ = ["decide", "plan", "review"]

_MISSED = re.compile(r"target (?:missed|not met)|not (?:yet )?met|still (?:above|over)|missed the target")
_MET = re.compile(r"target met|meets the target|already meets|no (?:change|action) (?:is )?needed")


def plan(conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
    """A plan by the parts of the request (``outcome.part_plan``); past decisions that limit a service bind the
    steps that act."""
    found = part_plan(conv)
    lessons = _lessons(conv, read_goal(conv.goal))
    if lessons:
        for step in found["steps"]:
            if step["role"] == "optimizer":
                step["instruction"] = (step["instruction"] + f" Past decisions bind this step: {'; '.join(lessons)}.")[:2000]
    return found


# A past decision that went wrong above a count: "scaling payments-api above 6 caused DB connection exhaustion",
# "never run search-api on more than 4 replicas".
_LIMIT = re.compile(r"\b(?:above|more than|over|beyond|past|exceeding)\s+(\d+)(?:\s+replicas?)?", re.I)
_HARM = re.compile(r"\b(caus\w*|exhaust\w*|fail\w*|broke|break\w*|outage|incident|never|do not|don't|avoid|"
                   r"crash\w*|degrad\w*|overload\w*|errors?)\b", re.I)


def _lessons(conv: Conversation, goal: GoalReading) -> list[str]:
    """Replica ceilings that "# Similar past decisions" impose on the entities this goal names."""
    found: dict[str, int] = {}
    for line in conv.sections.get("Similar past decisions", "").splitlines():
        if not _HARM.search(line):
            continue
        for entity in goal.entities:
            for m in _LIMIT.finditer(line):
                # The count must follow a mention of the entity in the same sentence of the lesson.
                before = line[: m.start()]
                sentence = re.split(r"[.;!?](?:\s|$)", before)[-1]
                if entity.lower() in sentence.lower():
                    found[entity] = min(found.get(entity, 10**6), int(m.group(1)))
    return [f"keep {e} at most {n} replicas (a past decision above {n} went wrong)" for e, n in found.items()]


def _findings(conv: Conversation) -> list[tuple[str, str, str]]:
    """(step id, agent, summary) of each finding in the ``# Findings so far`` section."""
    found = []
    for line in conv.sections.get("Findings so far", "").splitlines():
        m = re.match(r"\[(\S+) (\S+)\] (.*)", line)
        if m:
            found.append((m.group(1), m.group(2), m.group(3)))
    return found


def _actions(conv: Conversation) -> list[tuple[str, str, str]]:
    """(tool, status, text) of each line in the ``# Actions taken`` section."""
    acts = []
    for line in conv.sections.get("Actions taken", "").splitlines():
        m = re.match(r"(\w+) (.*) -> (\w+)(?::\s*(.*))?$", line.strip())
        if m:
            acts.append((m.group(1), m.group(3), f"{m.group(1)} {m.group(2)}" + (f" ({m.group(4)})" if m.group(4) else "")))
    return acts


def _rounds(conv: Conversation) -> tuple[int, int]:
    m = re.search(r"(\d+)\s*of\s*(\d+)", conv.sections.get("Round", ""))
    return (int(m.group(1)), int(m.group(2))) if m else (1, 1)


def _verification_missed(conv: Conversation) -> str | None:
    # The last finding that speaks of the target decides: a later "met" supersedes an earlier "missed".
    for _, _, summary in reversed(_findings(conv)):
        lowered = summary.lower()
        if _MISSED.search(lowered):
            return summary
        if _MET.search(lowered):
            return None
    return None


def review(conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
    if has_parts(conv):
        return part_review(conv, simple=simple)
    number, total = _rounds(conv)
    failed = [text for tool, status, text in _actions(conv) if status == "failed"]
    missed = _verification_missed(conv)
    if simple or number >= total or not (failed or missed):
        reason = "The findings answer the goal; rounds are used up." if number >= total else \
            "The findings and actions answer the goal; no further steps would change the outcome."
        if failed or missed:
            reason = f"Deciding with the target not fully met (round {number} of {total}); see the open risks."
        return {"verdict": "decide", "reason": reason, "new_steps": []}
    try:
        taken = {str(s.get("id")) for s in json.loads(conv.sections.get("Plan", "{}")).get("steps", [])}
    except (ValueError, AttributeError):
        taken = set()
    act_id = next(f"r{number}s{i}" for i in range(1, 99) if f"r{number}s{i}" not in taken)
    check_id = next(f"r{number}s{i}" for i in range(2, 99) if f"r{number}s{i}" not in taken | {act_id})
    why = missed or f"the action {failed[0]} failed"
    # Constraints the plan put on its steps (from past decisions) bind the steps a replan adds, too.
    bound = re.search(r"Past decisions bind this step: [^\"]*?\.(?=\"|$)", conv.sections.get("Plan", ""))
    carried = f" {bound.group(0)}" if bound else ""
    steps = [
        {"id": act_id, "role": "optimizer", "depends_on": [],
         "instruction": f"Act again toward the goal, starting from the current state: {conv.goal[:400]} "
                        f"(last round: {why[:300]}){carried}"},
        {"id": check_id, "role": "analyst", "depends_on": [act_id],
         "instruction": "Verify after the change: re-read the current state and report whether the target is met."},
    ]
    return {"verdict": "replan", "reason": f"Round {number} of {total}: {why[:600]}", "new_steps": steps}


def decide(conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
    if has_parts(conv):
        return part_decide(conv, simple=simple)
    goal = read_goal(conv.goal)
    findings = _findings(conv)
    actions = _actions(conv)
    done = [text for tool, status, text in actions if status == "ok"]
    escalations = [text for tool, status, text in actions if status == "ok" and "escalat" in tool]
    stopped = [f"{text} was {status}" for tool, status, text in actions if status not in ("ok", "pending")]
    missed = _verification_missed(conv)
    met = any(_MET.search(s.lower()) for _, _, s in findings)
    if done and escalations and len(escalations) == len(done):
        outcome = "escalated"
    elif done:
        outcome = "partially_achieved" if (missed or stopped) else "achieved"
    elif stopped:
        outcome = "not_achieved"
    elif not goal.act or met:
        outcome = "no_action_needed"
    else:
        outcome = "not_achieved"
    if done:
        summary = f"Actions taken: {'; '.join(done[:4])}."
    elif stopped:
        summary = f"No change was made: {'; '.join(stopped[:3])}."
    elif goal.domain == "unknown":
        summary = "No action was taken: the goal names no service, dataset or ticket that the tools know about."
    else:
        summary = "No action was taken" + ("; the goal asked for a report." if not goal.act else ".")
    if findings:
        summary += f" Latest finding: {findings[-1][2][:400]}"
    summary += f" Outcome: {outcome.replace('_', ' ')}."
    cited = [f"[{sid} {agent}] {text}" for sid, agent, text in findings[-6:]]
    rationale = "Findings: " + (" ".join(cited) if cited else "none were reported.")
    if actions:
        rationale += " Actions: " + "; ".join(t for _, _, t in actions[:8]) + "."
    risks = [f"{s}" for s in stopped[:4]]
    risks += [f"escalated, awaiting a person: {e}" for e in escalations[:3]]
    if missed:
        risks.append(f"target not met after the change: {missed}")
    if not findings:
        risks.append("no findings were reported; the decision rests on the goal alone")
    confidence = {"achieved": 0.8, "no_action_needed": 0.7, "escalated": 0.6, "partially_achieved": 0.5,
                  "not_achieved": 0.4}[outcome]
    if simple:
        rationale, risks = rationale[:500], risks[:3]
    return {"summary": summary[:2000], "rationale": rationale[:4000], "confidence": confidence,
            "open_risks": risks[:10], "outcome": outcome}
