"""Billing History against localstripe: after a license purchase and a yearly switch, the
listed invoices and their PDFs carry exactly the totals Stripe has."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import pytest
from pypdf import PdfReader

from billing_app.db import make_engine, session_scope
from billing_app.models import Account
from billing_app.runner import migrate
from billing_app.services.accounts import create_account
from billing_app.services.invoices import history_page, render_account_invoice
from billing_app.services.money import format_money
from billing_app.services.seeding import paid_subscription
from billing_app.settings import Settings
from billing_app.stripe import snapshots
from billing_app.stripe.client import StripeClient

Emulator = Any  # conftest.Emulator (conftest modules are not importable by name)


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def engine(settings: Settings):
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def buy_licenses_and_switch_to_yearly(
    client: StripeClient, subscription_id: str, prices: snapshots.Catalogue
) -> None:
    """What the Purchase Additional License and Convert to Yearly Billing flows send to Stripe."""
    subscription = client.retrieve_subscription(subscription_id)
    more, payment = client.change_subscription(
        subscription,
        price_id=prices.monthly_price_id,
        quantity=12,
        proration_date=int(time.time()),
        idempotency_key=key(),
    )
    assert payment is not None and payment.paid
    yearly, payment = client.change_subscription(
        more,
        price_id=prices.yearly_price_id,
        quantity=12,
        proration_date=int(time.time()),
        idempotency_key=key(),
    )
    assert payment is not None and payment.paid and yearly.interval == "year"


def test_history_after_a_license_purchase_and_a_yearly_switch(
    settings: Settings, emulator: Emulator, engine
):
    client = StripeClient(settings)
    prices = client.ensure_catalogue()
    slug = f"hist-{key()[:8]}"
    with session_scope(engine) as session:
        account = create_account(
            session, slug=slug, name="Café Zürich AG", admin_email="admin@zurich.test", actor="test"
        )
    customer_id = client.create_customer(
        name="Café Zürich AG", email="admin@zurich.test", account_ref=slug, idempotency_key=key()
    )
    client.attach_default_card(customer_id, "pm_card_visa", idempotency_key=key())
    subscription = paid_subscription(client, customer_id, prices.monthly_price_id, 10, key=key())
    with session_scope(engine) as session:
        session.get(Account, account.id).stripe_customer_id = customer_id
    buy_licenses_and_switch_to_yearly(client, subscription.id, prices)

    page = history_page(client, account.id, actor="test", engine=engine)

    stripe_invoices = {
        inv["id"]: inv
        for inv in emulator.get(f"/v1/invoices?customer={customer_id}&limit=100").json()["data"]
    }
    assert len(page.rows) == len(stripe_invoices) == 3 and not page.has_more
    assert {row.id for row in page.rows} == set(stripe_invoices)
    for row in page.rows:
        raw = stripe_invoices[row.id]
        assert row.amount == format_money(raw["total"], "usd")
        assert row.status == "Paid"
    # The first subscription (10 × $8), the 2 extra licenses for (almost) the whole month, the
    # switch to 12 × $80 a year less the unused month of 12 licenses (time-based prorations).
    assert sorted(raw["total"] for raw in stripe_invoices.values()) == [1600, 8000, 86400]
    # Stripe numbers its invoices (the emulator too): its number is the one shown.
    assert {row.number for row in page.rows} == {raw["number"] for raw in stripe_invoices.values()}

    for row in page.rows:
        raw = stripe_invoices[row.id]
        rendered = render_account_invoice(
            client, settings, account.id, row.id, actor="test", engine=engine
        )
        assert rendered.filename == f"invoice-{row.number}.pdf"
        text = " ".join(
            " ".join(p.extract_text().split())
            for p in PdfReader(io.BytesIO(rendered.content)).pages
        )
        assert row.number in text and "Café Zürich AG" in text
        for label, field in (
            ("Subtotal", "subtotal"),
            ("Total", "total"),
            ("Amount paid", "amount_paid"),
        ):
            assert f"{label} {format_money(raw[field], 'usd')}" in text
        assert "Amount due $0.00" in text
        for line in raw["lines"]["data"]:  # every Stripe line, credits included
            assert format_money(line["amount"], "usd") in text
            assert line["description"] in text


def test_invoice_pages_follow_stripes_cursor(settings: Settings):
    client = StripeClient(settings)
    prices = client.ensure_catalogue()
    customer_id = client.create_customer(
        name="Pages", email="p@pages.test", account_ref="pages", idempotency_key=key()
    )
    client.attach_default_card(customer_id, "pm_card_visa", idempotency_key=key())
    for _ in range(5):
        paid_subscription(client, customer_id, prices.monthly_price_id, 1, key=key())
    seen: list[str] = []
    cursor = None
    while True:
        page = client.invoice_page(customer_id, limit=2, starting_after=cursor)
        seen += [invoice.id for invoice in page.invoices]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 5
