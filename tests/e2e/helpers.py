"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

# Every secret the tests hand out, for the check that none of them is stored or logged.
# (Kept here, not in conftest.py: pytest imports conftest under another module name.)
ISSUED_SECRETS: list[str] = []


def fill_card(frame, number: str, expiry_month: str = "12", expiry_year: str = "31") -> None:
    """Type a card into the Stripe.js card element (localstripe's inputs in test mode)."""
    frame.get_by_placeholder("number").fill(number)
    frame.get_by_placeholder("exp_month").fill(expiry_month)
    frame.get_by_placeholder("exp_year").fill(expiry_year)
    frame.get_by_placeholder("cvc").fill("123")
    frame.get_by_placeholder("postal_code").fill("10001")
