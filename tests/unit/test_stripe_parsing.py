"""The gateway's parsers against Stripe's own example objects (tests/fixtures/stripe/, copied from
Stripe's published fixtures3.json): the shapes real Stripe answers in for the pinned API version."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from billing_app.stripe import errors, parsing, snapshots

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_subscription_reads_the_price_and_the_item_periods() -> None:
    raw = fixture("subscription")
    sub = parsing.subscription_from(raw)
    item = raw["items"]["data"][0]
    # The price wins over the legacy `plan` Stripe still includes beside it.
    assert (sub.id, sub.customer_id, sub.status) == (raw["id"], raw["customer"], raw["status"])
    assert (sub.price_id, sub.interval, sub.unit_amount, sub.currency) == (
        item["price"]["id"],
        "month",
        item["price"]["unit_amount"],
        "usd",
    )
    assert sub.quantity == item["quantity"]
    assert sub.item_id == item["id"]
    assert sub.current_period_end == parsing.timestamp(item["current_period_end"])
    assert sub.current_period_start == parsing.timestamp(item["current_period_start"])
    assert sub.cancel_at == parsing.timestamp(raw["cancel_at"])


def test_subscription_pending_update() -> None:
    raw = fixture("subscription")
    assert parsing.subscription_from(raw).pending_update == snapshots.PendingUpdate(None, None)
    raw["pending_update"]["subscription_items"] = [
        {"id": "si_1", "quantity": 12, "price": copy.deepcopy(raw["items"]["data"][0]["price"])}
    ]
    pending = parsing.subscription_from(raw).pending_update
    assert pending == snapshots.PendingUpdate(raw["items"]["data"][0]["price"]["id"], 12)
    raw["pending_update"] = None
    assert parsing.subscription_from(raw).pending_update is None


def test_subscription_with_an_expanded_latest_invoice_and_payment_method() -> None:
    raw = fixture("subscription")
    raw["latest_invoice"] = fixture("invoice")
    raw["default_payment_method"] = fixture("payment_method")
    raw["metadata"] = {"billing_action": "purchase_unlimited:abc"}
    sub = parsing.subscription_from(raw)
    assert sub.latest_invoice_id == fixture("invoice")["id"]
    assert sub.default_payment_method == fixture("payment_method")["id"]
    assert sub.created_by == "purchase_unlimited:abc"


def test_subscription_without_items_is_an_unexpected_answer() -> None:
    raw = fixture("subscription")
    raw["items"]["data"] = []
    with pytest.raises(errors.GatewayError) as caught:
        parsing.subscription_from(raw)
    assert caught.value.code == "unexpected_response"


def test_invoice_lines_proration_and_buyer_details() -> None:
    raw = fixture("invoice")
    invoice = parsing.invoice_from(raw)
    line = raw["lines"]["data"][0]
    assert (invoice.id, invoice.status, invoice.currency) == (
        raw["id"],
        raw["status"],
        raw["currency"],
    )
    assert (invoice.total, invoice.amount_due, invoice.amount_paid) == (
        raw["total"],
        raw["amount_due"],
        raw["amount_paid"],
    )
    assert invoice.amount_remaining == raw["amount_remaining"]
    assert invoice.tax == 0  # total_taxes is null in the example
    (parsed,) = invoice.lines
    assert (parsed.amount, parsed.quantity, parsed.description) == (
        line["amount"],
        line["quantity"],
        line["description"],
    )
    assert parsed.proration is True  # parent.*_details.proration, the current shape
    assert (
        invoice.period_start == invoice.period_end == datetime(2024, 7, 26, 0, 34, 14, tzinfo=UTC)
    )
    assert invoice.customer_address == ()  # every field null


def test_invoice_taxes_and_frozen_buyer_details() -> None:
    raw = fixture("invoice")
    raw["total_taxes"] = [
        {"amount": 190, "tax_behavior": "exclusive", "taxability_reason": "standard_rated"}
    ]
    raw["customer_address"] = {
        "line1": "Bahnhofstrasse 1",
        "line2": None,
        "postal_code": "8001",
        "city": "Zürich",
        "state": None,
        "country": "CH",
    }
    raw["customer_tax_ids"] = [{"type": "ch_vat", "value": "CHE-123.456.789 MWST"}]
    raw["customer_name"], raw["customer_email"] = "Café Zürich AG", "billing@zurich.test"
    invoice = parsing.invoice_from(raw)
    assert invoice.tax == 190
    assert (invoice.customer_name, invoice.customer_email) == (
        "Café Zürich AG",
        "billing@zurich.test",
    )
    assert invoice.customer_address == ("Bahnhofstrasse 1", "8001 Zürich", "CH")
    assert invoice.customer_tax_ids == ("CHE-123.456.789 MWST",)


def test_invoice_payment_from_the_confirmation_secret_and_its_payment_intent() -> None:
    invoice, intent = fixture("invoice"), fixture("payment_intent")
    invoice["status"] = "open"
    # `confirmation_secret` is an includable field (expand), absent from the example object.
    invoice["confirmation_secret"] = {
        "client_secret": intent["client_secret"],
        "type": "payment_intent",
    }
    intent["status"] = "requires_action"
    intent["last_payment_error"] = None
    payment = parsing.payment_from(invoice, intent)
    assert parsing.intent_id(intent["client_secret"]) == intent["id"]
    assert payment.needs_customer and not payment.paid and not payment.failed
    assert payment.client_secret == intent["client_secret"]

    intent["status"] = "requires_payment_method"
    intent["last_payment_error"] = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
    }
    declined = parsing.payment_from(invoice, intent)
    assert declined.failed and declined.failure_message == "Your card has insufficient funds."

    invoice["status"] = "paid"
    assert parsing.payment_from(invoice, None).paid


def test_card_summary_from_a_payment_method() -> None:
    raw = fixture("payment_method")
    card = parsing.card_from(raw)
    assert card == snapshots.CardSummary(raw["id"], "visa", raw["card"]["last4"], 8, 2030)
    raw["card"] = None
    assert parsing.card_from(raw) is None


def test_price_shape() -> None:
    raw = fixture("price")
    item = {"id": "si_1", "quantity": 1, "price": raw}
    assert parsing.price_of(item) == (raw["id"], "month", raw["unit_amount"], raw["currency"])
    # localstripe's older shape: the plan alone.
    plan_only = {
        "id": "si_2",
        "plan": {"id": "plan_1", "interval": "year", "amount": 8000, "currency": "usd"},
    }
    assert parsing.price_of(plan_only) == ("plan_1", "year", 8000, "usd")


def test_setup_and_payment_intent_secrets_name_their_intents() -> None:
    for name in ("setup_intent", "payment_intent"):
        raw = fixture(name)
        assert parsing.intent_id(raw["client_secret"]) == raw["id"]


def test_customer_default_payment_method() -> None:
    raw = fixture("customer")
    assert parsing.default_payment_method_of(raw) is None  # null in the example
    raw["invoice_settings"]["default_payment_method"] = fixture("payment_method")["id"]
    assert parsing.default_payment_method_of(raw) == fixture("payment_method")["id"]
    raw["invoice_settings"]["default_payment_method"] = fixture("payment_method")  # expanded
    assert parsing.default_payment_method_of(raw) == fixture("payment_method")
    assert parsing.default_payment_method_of({"id": raw["id"], "deleted": True}) is None


def _schedule(status: str = "active") -> dict[str, Any]:
    """A subscription schedule in the shape of Stripe's API reference (The Subscription Schedule
    object): two phases, prices as ids (with the legacy `plan` beside them)."""
    return {
        "id": "sub_sched_1Mr3YdLkdIwHu7ixjop3qtff",
        "object": "subscription_schedule",
        "status": status,
        "current_phase": {"start_date": 1_780_000_000, "end_date": 1_782_592_000},
        "end_behavior": "release",
        "phases": [
            {
                "start_date": 1_780_000_000,
                "end_date": 1_782_592_000,
                "items": [{"plan": "price_old", "price": "price_old", "quantity": 10}],
            },
            {
                "start_date": 1_782_592_000,
                "end_date": 1_785_270_400,
                "items": [{"plan": "price_new", "price": "price_new", "quantity": 8}],
            },
        ],
    }


def test_the_next_phase_of_a_schedule_is_what_the_renewal_bills() -> None:
    assert parsing.next_phase_of(_schedule()) == (
        datetime.fromtimestamp(1_782_592_000, tz=UTC),
        "price_new",
        8,
    )
    # Released, canceled or completed: the schedule no longer changes anything.
    for status in ("released", "canceled", "completed"):
        assert parsing.next_phase_of(_schedule(status)) is None
    only_current = _schedule()
    only_current["phases"] = only_current["phases"][:1]
    assert parsing.next_phase_of(only_current) is None


def test_a_subscription_names_its_schedule() -> None:
    raw = fixture("subscription")
    assert parsing.subscription_from({**raw, "schedule": None}).schedule_id is None
    managed = parsing.subscription_from({**raw, "schedule": "sub_sched_1"})
    assert (managed.schedule_id, managed.scheduled) == ("sub_sched_1", None)
    expanded = parsing.subscription_from({**raw, "schedule": {"id": "sub_sched_2"}})
    assert expanded.schedule_id == "sub_sched_2"


def test_billing_details_from_the_customer_and_its_tax_id() -> None:
    raw, tax_id = fixture("customer"), fixture("tax_id")
    assert parsing.billing_details_from(raw, []) == snapshots.BillingDetails(name="", email="")
    raw["name"], raw["email"] = "Acme GmbH", "billing@acme.test"
    raw["address"].update(line1="Friedrichstraße 1", postal_code="10117", city="Berlin")
    raw["address"]["country"] = "DE"
    details = parsing.billing_details_from(raw, [tax_id])
    assert details == snapshots.BillingDetails(
        name="Acme GmbH",
        email="billing@acme.test",
        line1="Friedrichstraße 1",
        city="Berlin",
        postal_code="10117",
        country="DE",
        tax_id_type="eu_vat",
        tax_id_value="DE123456789",
    )
