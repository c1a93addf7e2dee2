"""The offline model's rules for the operations world (``OperationsRules``): a request read as parts, each part's
target resolved from what the world's listings show, acted on only when it resolves, verified, and a decision whose
outcome comes from every part's result. No rule names a service, dataset, ticket or scenario: what exists, what
it is called and what it is for come from the tools' results.

**Reading** (``intents``). The goal is cut into fragments (sentence ends, ";", ":", dashes, commas, and "and" /
"then" before a verb the tools carry out). A fragment that starts with such a verb (scale, trim, roll back,
restart, fix, dedupe, clean, close, refund, escalate / "hand … to a person"), or states a target ("p95 has to be
back at 0.06 s or better"), is an *act*; a question or "check / how's" is a *report*; a bound after an act ("just
don't let its p95 go above 0.15 s") qualifies it; an act that only points back ("and close those tickets") joins
the one before; statements are context for a later "it". "No changes" / "just numbers" make every part a report;
an imperative no tool carries out ("order pizza") is *unsupported*. Units are normalised: s/ms, $/hour, %, "N
more replicas", "to N".

**Resolving** (``resolve``). From the listings in the step's own conversation: an exact name, or an identifier
that names nothing ("pricing-api", "marketing_leads", "T-1999": unknown, never a look-alike), a quoted alias in a
description (``("recs")``), else stemmed words shared with names and descriptions, weighted by rarity (IDF), taken
only above a floor and ahead of the runner-up by a margin. Each "and"-joined object of a clause is resolved on
its own; one that names nothing beside one that does is reported unknown. Tickets are picked by id, else by a
topic the clause names ("tickets about a late or missing delivery", "everyone who got charged a delivery fee"),
matched against subjects and messages (every listed open ticket is read), else by priority as before.

**Plan** (``outcome.part_plan``). Per part: an optimizer step ("Part k of n: …") and, for services and datasets,
an analyst step that verifies with a fresh read; per question an analyst step; a request with no part the tools
can do gets one analyst step that reads what exists and says agentmesh cannot do it.

**Worker step** (``steps``; steps of other graphs, with no part in their instruction, keep the rules of
``ops``, ``data`` and ``support`` as before). List what the part's domain needs, resolve, read the targets, then:

- services: the metrics decide, not the user's words (``ops.service_plan``): memory near full → restart; a release
  that errs or is slower than the one before → roll back; load → scale (to a latency target by simulation, else to
  ~70% utilisation; an asked count within policy); an idle service asked for replicas against a symptom gets none;
  a trim or a budget scales down while p95 holds; a rollback asked for a good release of an overloaded service
  scales instead; each with the reason;
- datasets: profile; clean with the profile's suggestions (only its dedupe when duplicates were asked); a
  protected dataset is left alone and said to be protected;
- tickets: escalate when escalation is the ask; a ticket that instructs the agent, threatens or claims fraud is
  escalated whatever was asked; "refund"/"resolve"/"handle" pays what was asked within the cap (above it:
  escalate); "close" pays nothing; a "let them know …" goes into the resolution;
- a part that resolves to nothing changes nothing and says what exists.

Each finding starts with a tag (``[part 2/3 done]``, ``not done``, ``no change``, ``escalated``, ``met``,
``missed``, ``report``, ``[part 0/0 unsupported]``) and states every entity by name in a sentence.

**Review and decision** (``outcome``). A part whose service change was verified missed is acted on again while
rounds remain. The outcome: every acting part a success (done and verified, or a ticket handled) → ``achieved``
(``escalated`` when every change was an escalation); some → ``partially_achieved``; none but failures →
``not_achieved``; only reports or parts that needed no change → ``no_action_needed``; unsupported →
``not_achieved``. ``achieved`` needs a write in the audit.
"""

from __future__ import annotations

from typing import Any

from agentmesh.models.offline.conversation import Call, Conversation
from agentmesh.plugins.operations.offline import strategy, workers

__all__ = ["OperationsRules"]


class OperationsRules:
    """The ``OfflineRules`` of the operations world."""

    def plan(self, conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
        return strategy.plan(conv, simple=simple)

    def review(self, conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
        return strategy.review(conv, simple=simple)

    def decide(self, conv: Conversation, *, simple: bool = False) -> dict[str, Any]:
        return strategy.decide(conv, simple=simple)

    def next_calls(self, conv: Conversation) -> list[Call]:
        return workers.next_calls(conv)

    def finding(self, conv: Conversation) -> dict[str, Any]:
        return workers.finding(conv)
