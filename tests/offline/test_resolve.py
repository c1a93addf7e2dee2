"""The resolver: what a phrase refers to, from the names, aliases and descriptions a world's listings show."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agentmesh.core.messages import tool_result
from agentmesh.models.offline.conversation import read_conversation
from agentmesh.plugins.operations.offline.resolve import Entity, EntityIndex, entity_index, stem

SERVICES = [
    Entity(kind="service", name="auth-api", description="Login and sessions"),
    Entity(kind="service", name="checkout-api", description="Checkout and order placement"),
    Entity(kind="service", name="recommendations", description='Personalised recommendations ("recs")',
           aliases=("recs",)),
    Entity(kind="service", name="notifications-worker", description="E-mail and push delivery"),
    Entity(kind="service", name="payments-api", description="Card payments and refunds"),
]
INDEX = EntityIndex(SERVICES)


def names(phrase: str) -> list[str]:
    return INDEX.resolve(phrase, kinds=("service",)).names


@pytest.mark.parametrize(("phrase", "expected"), [
    ("checkout-api is slow", ["checkout-api"]),                          # the name
    ("recs is over-provisioned", ["recommendations"]),                   # a quoted alias in the description
    ("the login thing is super slow", ["auth-api"]),                     # a description word
    ("card payments keep timing out", ["payments-api"]),
    ("order confirmation e-mails and push notifications are late", ["notifications-worker"]),  # outweighs "order"
    ("fix checkout", ["checkout-api"]),                                  # a part of a name
])
def test_a_phrase_resolves_to_the_entity_it_describes(phrase: str, expected: list[str]) -> None:
    assert names(phrase) == expected


@pytest.mark.parametrize("phrase", ["the PDF invoice generator keeps crashing", "anything on fire right now",
                                    "what is the weather like in Paris"])
def test_a_phrase_that_describes_nothing_resolves_to_nothing(phrase: str) -> None:
    assert names(phrase) == []


def test_an_identifier_that_names_nothing_is_unknown_never_a_look_alike() -> None:
    found = INDEX.resolve("pricing-api is falling over", kinds=("service",))
    assert found.names == [] and found.unknown == ["pricing-api"]
    # A hyphenated word that does not end the way service names do is no identifier.
    assert INDEX.identifiers("the password-reset mails", ("service",)) == []
    # A service-like name with a suffix no listed service has ("-db") is still a name, never matched by its words:
    # "orders-db keeps timing out on reads" is not checkout-api ("order placement").
    found = INDEX.resolve("orders-db keeps timing out on reads since noon", kinds=("service",))
    assert found.names == [] and found.unknown == ["orders-db"]


def test_two_entities_with_equal_evidence_are_ambiguous_and_neither_is_taken() -> None:
    index = EntityIndex([Entity(kind="service", name="eu-gateway", description="Edge gateway for Europe"),
                         Entity(kind="service", name="us-gateway", description="Edge gateway for America")])
    found = index.resolve("the gateway is slow", kinds=("service",))
    assert found.names == [] and sorted(found.candidates) == ["eu-gateway", "us-gateway"]
    assert index.resolve("the europe gateway is slow", kinds=("service",)).names == ["eu-gateway"]


def test_a_column_beside_a_dataset_name_is_not_an_unknown_dataset() -> None:
    index = EntityIndex([Entity(kind="dataset", name="customers", description="Customer master data")])
    found = index.resolve("dedupe customers on customer_id", kinds=("dataset",))
    assert found.names == ["customers"] and found.unknown == []


def test_stems_join_word_forms() -> None:
    assert stem("delivered") == stem("delivery") == stem("deliveries")
    assert stem("exported") == stem("export")
    assert stem("generator") != stem("general")


def test_the_index_is_built_from_the_listings_in_the_conversation() -> None:
    listing = {"services": [{"name": "search-api", "description": "Product search", "status": "erroring"}]}
    messages = [HumanMessage("# Goal\nx"),
                AIMessage("", tool_calls=[{"name": "list_services", "args": {}, "id": "c1"}]),
                ToolMessage(tool_result("ok", result=listing), tool_call_id="c1", name="list_services")]
    index = entity_index(read_conversation(messages, []))
    assert index.resolve("product search is failing", kinds=("service",)).names == ["search-api"]
    assert index.get("search-api").record["status"] == "erroring"  # type: ignore[union-attr]
