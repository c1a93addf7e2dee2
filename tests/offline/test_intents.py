"""Reading a request: fragments, intents per clause, what points back, what forbids changes, and units."""

from __future__ import annotations

import pytest

from agentmesh.plugins.operations.offline.intents import parse_bounds, parse_request, split_fragments


def test_a_list_of_nouns_stays_one_fragment_and_a_second_verb_splits() -> None:
    assert split_fragments("dedupe the CRM export and the general ledger") == [
        "dedupe the CRM export and the general ledger"]
    assert split_fragments("Fix checkout, then close T-1012 and tell them it's sorted") == [
        "Fix checkout", "close T-1012", "tell them it's sorted"]
    # The message to the customers stays with the ask it belongs to.
    [_, close] = parse_request("Fix checkout, then close T-1012 and tell them it's sorted").intents
    assert close.extra == ["tell them it's sorted"]


def test_two_asks_in_one_message_are_two_intents_each_with_its_own_action_and_domain() -> None:
    request = parse_request("before the weekly report: roll search back to the release before the rc, and get the "
                            "duplicates out of the 2024 shop orders")
    assert [(i.action, i.domain) for i in request.intents] == [("rollback", "ops"), ("dedupe", "data")]
    assert request.intents[0].context == ["before the weekly report"]


def test_it_refers_to_the_statement_before_it() -> None:
    [intent] = parse_request("the login thing is super slow since the marketing mail went out. sort it out pls").intents
    assert intent.clause == "sort it out pls"
    # The clause saying since when is a cause, not what "it" is.
    assert intent.referring_texts()[1] == "the login thing is super slow"


def test_an_ask_that_only_points_back_joins_the_ask_before_it() -> None:
    [intent] = parse_request("Refund everyone who got charged a delivery fee, and close those tickets.").intents
    assert intent.actions == ["refund", "resolve"]


def test_a_bound_after_an_ask_qualifies_it() -> None:
    [intent] = parse_request("get recommendations under $5/hr - just don't let its p95 go above 0.15 s").intents
    assert intent.bounds.cost_usd_hour == 5.0
    assert intent.bounds.latency_ms == 150.0


@pytest.mark.parametrize("goal", ["hey quick q - how's the login thing doing? no changes pls",
                                  "T-1009 claims checkout is slow. Is that true? just check, don't change anything",
                                  "how dirty is the orders data, roughly? just numbers, not fixing anything today"])
def test_a_question_or_a_no_change_request_is_a_report(goal: str) -> None:
    request = parse_request(goal)
    assert [i.action for i in request.intents] == ["report"]


@pytest.mark.parametrize("goal", ["can you order 3 large pizzas to the office for the on-call team, 7pm?",
                                  "write a little poem about our uptime and put it on the public status page",
                                  "we were up all night firefighting checkout, order the team some pizza"])
def test_a_request_no_tool_does_has_no_intent(goal: str) -> None:
    request = parse_request(goal)
    assert request.intents == [] and request.unsupported


@pytest.mark.parametrize(("goal", "action"), [
    ("recs feels sluggish, add 4 more replicas to it", "scale_up"),
    ("whatever sends them looks swamped. throw some more capacity at it", "scale_up"),
    ("recs is over-provisioned, trim it", "scale_down"),
    ("product search is failing. put the previous version back", "rollback"),
    ("The PDF invoice generator keeps crashing, restart it please.", "restart"),
    ("Hand every ticket about a late delivery to a person for now", "escalate"),
    ("auth-api p95 has to be back at 0.06 s or better", "target"),
])
def test_the_verb_decides_the_action(goal: str, action: str) -> None:
    assert parse_request(goal).intents[-1].action == action


@pytest.mark.parametrize(("text", "latency_ms"), [
    ("auth-api p95 has to be back at 0.06 s or better", 60.0),
    ("get it under 300ms", 300.0),
    ("keep p95 below 1.2 seconds", 1200.0),
    ("p95 within 250 ms please", 250.0),
    ("checkout p95 is at 900 ms", None),  # a reading, not a target
    ("p95 is above 150 ms", None),
    ("p95 spiked to 2 s overnight", None),  # risen to: a reading
    ("payments-api p95 jumped to 1.2 s after the last deploy; get it back under 400 ms", 400.0),
    ("latency went up to 900 ms, can you get it to 300 ms", 300.0),
    ("get p95 to 300 ms", 300.0),
])
def test_latency_bounds_are_normalised_to_milliseconds(text: str, latency_ms: float | None) -> None:
    assert parse_bounds(text).latency_ms == latency_ms


def test_above_is_a_bound_only_where_the_text_forbids_it() -> None:
    assert parse_bounds("don't let its p95 go above 0.15 s", negated=True).latency_ms == 150.0


@pytest.mark.parametrize(("text", "field", "value"), [
    ("get recommendations under $5/hr", "cost_usd_hour", 5.0),
    ("don't spend more than $20 an hour", "cost_usd_hour", 20.0),
    ("keep it below $12.50 per hour", "cost_usd_hour", 12.5),
    ("give card payments 2 more replicas", "add_replicas", 2),
    ("scale it up to 6.", "set_replicas", 6),
    ("use at most 8 replicas", "max_replicas", 8),
    ("trim its spend by about 40%", "cost_cut_pct", 40.0),
    ("don't double what we spend on it", "cost_factor", 2.0),
])
def test_costs_and_replica_counts(text: str, field: str, value: object) -> None:
    assert getattr(parse_bounds(text), field) == value


def test_cheaper_is_a_cut_and_letting_ops_know_is_a_notice() -> None:
    [cut] = parse_request("Make the recommendations service cheaper but keep p95 under 150ms").intents
    assert (cut.action, cut.bounds.latency_ms) == ("scale_down", 150.0)
    [dedupe] = parse_request("Dedupe customers and then let ops know").intents
    assert dedupe.notify and dedupe.action == "dedupe"
    [close] = parse_request("close T-1012 and let those customers know it works again").intents
    assert not close.notify  # the customers, not operations


@pytest.mark.parametrize(("goal", "action", "factor", "cut"), [
    ("please double the replicas of the login service", "scale_up", 2.0, None),
    ("give payments twice as many replicas", "scale_up", 2.0, None),
    ("triple checkout's capacity for the sale", "scale_up", 3.0, None),
    ("halve the recommendations replicas", "scale_down", None, 50.0),
    ("latency doubled since yesterday on search, sort it out", "fix", None, None),  # a symptom, not a multiple
    ("fix checkout without doubling what it costs", "fix", None, None),  # a bound, not a multiple
])
def test_a_multiple_of_the_current_replicas_is_an_ask(goal: str, action: str, factor: float | None,
                                                       cut: float | None) -> None:
    (intent,) = parse_request(goal).intents
    assert (intent.action, intent.bounds.scale_factor, intent.bounds.cost_cut_pct) == (action, factor, cut)


@pytest.mark.parametrize("goal", ["double-check the search service", "double check how checkout is doing"])
def test_double_check_is_a_report_not_a_scale(goal: str) -> None:
    (intent,) = parse_request(goal).intents
    assert not intent.act


def test_double_as_a_description_is_not_a_multiple() -> None:
    assert parse_bounds("This customer is threatening to call their bank about double billing").scale_factor is None
    assert parse_bounds("a customer got billed twice for their order").scale_factor is None
    assert parse_bounds("they were charged twice the price").scale_factor is None
