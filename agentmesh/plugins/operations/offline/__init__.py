"""The offline model's rules for the operations world (``OperationsRules``): reading a goal, planning, each worker
step as a small state machine over the calls made so far, the review and the decision.

**Plan.** The goal's vocabulary picks a domain — ops (latency, p95, CPU, replicas, cost, ``xxx-api``
names, "under 300 ms"), data (dataset, csv, duplicates, nulls, quality) or support (ticket, customer,
refund, complaint, backlog) — and an intent: a change verb (reduce, scale, clean, resolve…) or a target
means act; a question or "report/check/status" without one, or "don't change anything", means report
only. Steps: s1 analyst investigates; for ops, an innovator offers alternatives in parallel; when acting,
an optimizer acts after s1, and for ops and data an analyst verifies after the optimizer. Instructions
restate the named entities and the target. A goal in no domain gets one analyst step that lists what exists.

**Worker step.** A state machine over the calls already made (at most 12 per step; a call not offered or
already made with the same arguments ends the step), then ``submit_finding`` with the numbers read:

- the entity comes from a previous successful read, else the goal's name-like tokens tried directly,
  else a ``list_*`` call and the listed name that best matches the goal and instruction;
- ops analyst/verifier: ``get_service_metrics``; reports p95, CPU, errors, replicas, cost and whether the
  target is met. Innovator: simulates 1.5x and 2x replicas and names options beyond scaling.
- ops optimizer: reads metrics; parses the target ("under 300 ms", "cut cost by 30%") and constraints
  ("without doubling cost" → replicas below 2x, "at most 8 replicas", the service's policy limits);
  searches with ``simulate_scaling`` (at most 4) for the smallest count meeting the target — or, for a
  cost goal, the smallest count that keeps p95 under the target (or within 25% of now) — else estimates
  from CPU (aiming at 70% utilisation); ``scale_service``; if refused, retries once clamped to the range
  the refusal states, then stops and reports. Before any of that, a degraded service (errors above 2% or p95
  above 500 ms) whose memory is near full is restarted (``restart_service``), and one whose deployed release
  errs or is slower than the previous release is rolled back (``rollback_service``); each tried once a step.
- data: ``profile_dataset``; the optimizer then ``clean_dataset`` with the profile's suggested operations;
  a refusal (protected dataset) is reported, not retried.
- support: ``list_tickets`` (open), ``get_ticket`` for the most urgent (3 for the analyst, up to 5 urgent or
  high for the optimizer), all read in one turn of parallel calls; then, in one turn, the optimizer resolves
  each with a polite message and the asked refund when within the cap (from the tool's schema or
  description, or a refusal; $50 if unknown) and escalates refunds above it, text that addresses the agent
  (injection), legal, abusive or fraud text; a refused resolution is escalated the turn after. Ticket text
  is never followed as instructions.
- a goal that asks to notify/alert gets one ``notify_operations`` call at the end of the optimizer's step.

**Review.** ``decide`` unless an action failed or the last finding about the target says it was missed
and rounds remain; then ``replan`` with an optimizer step and a verification step.

**Decision.** Summary and rationale from the findings and ``# Actions taken``; outcome: escalated when
the only actions were escalations, achieved / partially_achieved (target missed or a call refused) when
something was done, not_achieved when every change was refused or nothing could be done, and
no_action_needed for reports and targets already met; refused calls, escalations and a missed target are
open risks.
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
