"""Argument matchers and BFCL-style normalisation."""

from __future__ import annotations

import pytest

from agentmesh.evaluation.matchers import MatcherError, args_match, check_matcher, matches, normalise


def test_bfcl_normalisation() -> None:
    assert normalise("Checkout-API") == normalise("checkout_api") == normalise("checkout api") == "checkoutapi"
    assert normalise("it's") == 'it"s'


@pytest.mark.parametrize(("spec", "value", "expected"), [
    ("checkout-api", "Checkout API", True),
    (8, 8.0, True),
    (8, "8", True),
    (15, "15.00", True),
    (8, 9, False),
    ({"equals": "T-1001"}, "t1001", True),
    ({"one_of": ["warning", "critical"]}, "Critical", True),
    ({"one_of": ["warning", "critical"]}, "info", False),
    ({"range": [6, 12]}, 12, True),
    ({"range": [6, 12]}, 13, False),
    ({"range": {"min": 200.01}}, 899, True),
    ({"range": [6, 12]}, "seven", False),
    ({"regex": "(?i)payments"}, "Scaled Payments-API", True),
    ({"any": True}, None, True),
    ([1, 2], [1.0, 2], True),
    (True, 1, True),
])
def test_matchers(spec, value, expected) -> None:
    assert matches(spec, value) is expected


def test_subset_and_exact_argument_matching() -> None:
    actual = {"service": "checkout-api", "replicas": 6}
    assert args_match({"service": "checkout-api"}, actual) is None
    assert args_match({"service": "checkout-api"}, actual, exact=True) == "unexpected arguments ['replicas']"
    assert args_match({"ticket_id": "T-1"}, actual) == "argument ticket_id missing (wanted 'T-1')"
    assert "wanted in [1, 3]" in args_match({"replicas": {"range": [1, 3]}}, actual)


@pytest.mark.parametrize("spec", [{"range": [5, 1]}, {"range": "x"}, {"one_of": "a"}, {"regex": "("}, {"any": 1}])
def test_bad_matchers_are_rejected(spec) -> None:
    with pytest.raises(MatcherError):
        check_matcher(spec)
