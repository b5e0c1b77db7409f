"""Billing History against localstripe: after a license purchase and a yearly switch, the
listed invoices and their PDFs carry exactly the totals Stripe has."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from pypdf import PdfReader

import billing_app.stripe_gateway as gw
from billing_app.db import make_engine, session_scope
from billing_app.models import Account
from billing_app.runner import migrate
from billing_app.services.accounts import create_account
from billing_app.services.invoices import history_page, render_account_invoice
from billing_app.services.money import format_money
from billing_app.settings import TEST_MODE_SECRET_KEY, Settings
from billing_app.stripe_gateway import StripeClient

Emulator = Any  # conftest.Emulator (conftest modules are not importable by name)
# The SDK, reached through the gateway: no other project module imports it.
sdk = gw.stripe  # type: ignore[attr-defined]


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def engine(settings: Settings):
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def buy_licenses_and_switch_to_yearly(emulator: Emulator, subscription_id: str, plans: gw.Catalogue) -> None:
    """What the Purchase Additional License and Convert to Yearly Billing flows send to Stripe
    (docs/stripe-compat.md), sent here directly: those flows live in their own issues."""
    stripe = sdk.StripeClient(TEST_MODE_SECRET_KEY, base_addresses={"api": emulator.base}).v1
    item = stripe.subscriptions.retrieve(subscription_id)["items"]["data"][0]["id"]
    updated = stripe.subscriptions.update(subscription_id, params={
        "items": [{"id": item, "plan": plans.monthly_plan_id, "quantity": 12}]})
    invoice = stripe.invoices.create(params={
        "customer": updated["customer"], "subscription": subscription_id,
        "pending_invoice_items_behavior": "include"})
    assert stripe.invoices.pay(invoice["id"])["status"] == "paid"
    item = updated["items"]["data"][0]["id"]
    yearly = stripe.subscriptions.update(subscription_id, params={
        "items": [{"id": item, "plan": plans.yearly_plan_id, "quantity": 12}]})
    assert yearly["items"]["data"][0]["plan"]["interval"] == "year"


def test_history_after_a_license_purchase_and_a_yearly_switch(settings: Settings, emulator: Emulator, engine):
    client = StripeClient(settings)
    plans = client.ensure_catalogue()
    slug = f"hist-{key()[:8]}"
    with session_scope(engine) as session:
        account = create_account(session, slug=slug, name="Café Zürich AG", admin_email="admin@zurich.test",
                                 actor="test")
    customer_id = client.create_customer(name="Café Zürich AG", email="admin@zurich.test", account_ref=slug,
                                         idempotency_key=key())
    client.attach_default_card(customer_id, "pm_card_visa", idempotency_key=key())
    subscription = client.create_subscription(customer_id, plans.monthly_plan_id, 10, idempotency_key=key())
    with session_scope(engine) as session:
        session.get(Account, account.id).stripe_customer_id = customer_id
    buy_licenses_and_switch_to_yearly(emulator, subscription.id, plans)

    page = history_page(client, account.id, actor="test", engine=engine)

    stripe_invoices = {inv["id"]: inv for inv in emulator.get(f"/v1/invoices?customer={customer_id}&limit=100")
                       .json()["data"]}
    assert len(page.rows) == len(stripe_invoices) == 3 and not page.has_more
    assert {row["id"] for row in page.rows} == set(stripe_invoices)
    for row in page.rows:
        raw = stripe_invoices[row["id"]]
        assert row["amount"] == format_money(raw["total"], "usd")
        assert row["status"] == "Paid"
    # The first subscription (10 × $8), the 2 extra licenses, the switch to 12 × $80 a year,
    # each less what localstripe credits back.
    assert sorted(raw["total"] for raw in stripe_invoices.values()) == [1600, 8000, 86400]
    assert sorted(row["number"] for row in page.rows) == [f"{slug.upper()}-000{n}" for n in (1, 2, 3)]

    for row in page.rows:
        raw = stripe_invoices[row["id"]]
        rendered = render_account_invoice(client, settings, account.id, row["id"], actor="test", engine=engine)
        assert rendered.filename == f"invoice-{row['number']}.pdf"
        text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(rendered.content)).pages)
        assert row["number"] in text and "Café Zürich AG" in text
        for label, field in (("Subtotal", "subtotal"), ("Total", "total"), ("Amount paid", "amount_paid")):
            assert f"{label} {format_money(raw[field], 'usd')}" in text
        assert "Amount due $0.00" in text
        for line in raw["lines"]["data"]:  # every Stripe line, credits included
            assert format_money(line["amount"], "usd") in text
            assert line["description"] in text


def test_invoice_pages_follow_stripes_cursor(settings: Settings):
    client = StripeClient(settings)
    plans = client.ensure_catalogue()
    customer_id = client.create_customer(name="Pages", email="p@pages.test", account_ref="pages",
                                         idempotency_key=key())
    client.attach_default_card(customer_id, "pm_card_visa", idempotency_key=key())
    for _ in range(5):
        client.create_subscription(customer_id, plans.monthly_plan_id, 1, idempotency_key=key())
    seen: list[str] = []
    cursor = None
    while True:
        page = client.invoice_page(customer_id, limit=2, starting_after=cursor)
        seen += [invoice.id for invoice in page.invoices]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 5
