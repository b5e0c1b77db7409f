"""The emulator (localstripe + billing_app.stripe.emulator) behaves like real Stripe.

Driven through the stripe SDK, as the gateway does, and through raw HTTP where
Stripe.js would be the caller (publishable key + client secret).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from billing_app.settings import TEST_MODE_PUBLISHABLE_KEY, TEST_MODE_SECRET_KEY

API_VERSION = "2026-10-28.endive"
VISA = "4242424242424242"
DECLINES_ON_CHARGE = "4000000000000341"  # pm_card_chargeCustomerFail
THREE_D_SECURE = "4000002500003155"
DAY = 86400


def make_client(base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        TEST_MODE_SECRET_KEY,
        base_addresses={"api": base},
        stripe_version=API_VERSION,
        max_network_retries=0,
    )


@pytest.fixture(scope="module")
def client(emulator) -> stripe.StripeClient:
    return make_client(emulator.base)


def uid() -> str:
    return uuid.uuid4().hex[:10]


def make_product(client: stripe.StripeClient) -> str:
    return client.v1.products.create(params={"name": f"Unlimited {uid()}"}).id


def make_price(
    client: stripe.StripeClient, product: str, amount: int, interval: str = "month", **extra: Any
) -> Any:
    return client.v1.prices.create(
        params={
            "product": product,
            "unit_amount": amount,
            "currency": "usd",
            "recurring": {"interval": interval},
            **extra,
        }
    )


def add_card(
    client: stripe.StripeClient, customer: str, number: str, *, default: bool = True
) -> str:
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(pm.id, params={"customer": customer})
    if default:
        client.v1.customers.update(
            customer, params={"invoice_settings": {"default_payment_method": pm.id}}
        )
    return pm.id


def make_customer(client: stripe.StripeClient, card: str | None = VISA) -> str:
    customer = client.v1.customers.create(
        params={"name": "Ada Lovelace", "email": "ada@example.test"}
    )
    if card:
        add_card(client, customer.id, card)
    return customer.id


def subscribe(
    client: stripe.StripeClient, customer: str, price: str, quantity: int, **extra: Any
) -> Any:
    return client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": price, "quantity": quantity}], **extra}
    )


def item_of(sub: Any) -> Any:
    return sub["items"]["data"][0]


def as_stripe_js(emulator, path: str, client_secret: str, **data: Any) -> httpx.Response:
    """A call the way Stripe.js makes it: publishable key and client secret, no secret key."""
    return httpx.post(
        emulator.base + path,
        timeout=10,
        json={"key": TEST_MODE_PUBLISHABLE_KEY, "client_secret": client_secret, **data},
    )


def authenticate(emulator, client_secret: str, success: bool) -> dict[str, Any]:
    pi = client_secret.split("_secret_")[0]
    response = as_stripe_js(
        emulator,
        f"/v1/payment_intents/{pi}/_authenticate?success={str(success).lower()}",
        client_secret,
    )
    assert response.status_code == 200, response.text
    return response.json()


def round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)).__floor__())


@pytest.fixture(scope="module")
def catalogue(client) -> dict[str, str]:
    product = make_product(client)
    return {
        "product": product,
        "monthly": make_price(client, product, 800).id,
        "yearly": make_price(client, product, 8000, "year").id,
    }


# 1. Prices ------------------------------------------------------------------------------


def test_prices_with_lookup_keys(client):
    product = make_product(client)
    key = f"unlimited-monthly-{uid()}"
    price = make_price(
        client, product, 800, lookup_key=key, nickname="Monthly", metadata={"tier": "u"}
    )
    assert price.id.startswith("price_")
    assert (
        price.object,
        price.active,
        price.product,
        price.unit_amount,
        price.currency,
        price.type,
        price.billing_scheme,
        price.lookup_key,
        price.nickname,
        price.livemode,
    ) == ("price", True, product, 800, "usd", "recurring", "per_unit", key, "Monthly", False)
    assert (
        price.recurring.interval,
        price.recurring.interval_count,
        price.recurring.usage_type,
    ) == ("month", 1, "licensed")
    assert client.v1.prices.retrieve(price.id).lookup_key == key

    with pytest.raises(stripe.InvalidRequestError) as taken:
        make_price(client, product, 900, lookup_key=key)
    assert taken.value.http_status == 400

    moved = make_price(client, product, 900, lookup_key=key, transfer_lookup_key=True)
    found = client.v1.prices.list(params={"lookup_keys": [key], "active": True, "limit": 10})
    assert [p.id for p in found.data] == [moved.id]
    assert client.v1.prices.retrieve(price.id).lookup_key is None
    assert {p.id for p in client.v1.prices.list(params={"product": product}).data} == {
        price.id,
        moved.id,
    }

    # A price works wherever a plan does; items and lines carry it.
    customer = make_customer(client)
    sub = subscribe(client, customer, moved.id, 2)
    assert sub.status == "active"
    assert (item_of(sub)["price"]["id"], item_of(sub)["plan"]["id"]) == (moved.id, moved.id)
    assert item_of(sub)["price"]["lookup_key"] == key
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    line = invoice.lines.data[0]
    assert line["pricing"]["price_details"]["price"] == moved.id
    assert line["price"]["id"] == moved.id
    assert line["parent"]["subscription_item_details"]["proration"] is False
    assert invoice.total == 1800


# 2. Subscription create › payment_behavior ------------------------------------------------


def test_default_incomplete_then_stripe_js_confirms_with_a_payment_method(
    client, emulator, catalogue
):
    customer = make_customer(client, card=None)
    sub = subscribe(
        client,
        customer,
        catalogue["monthly"],
        3,
        payment_behavior="default_incomplete",
        expand=["latest_invoice.payments"],
        metadata={"account": "a1"},
    )
    assert sub.status == "incomplete" and sub.metadata["account"] == "a1"
    invoice = sub.latest_invoice
    assert invoice.status == "open" and invoice.amount_due == 2400
    assert invoice.number.startswith("EMU-")
    secret = invoice.confirmation_secret
    assert secret.type == "payment_intent"
    pi_id = secret.client_secret.split("_secret_")[0]
    assert invoice.payments.data[0].payment.payment_intent == pi_id
    pi = client.v1.payment_intents.retrieve(pi_id)
    assert (pi.status, pi.amount, pi.customer) == ("requires_payment_method", 2400, customer)

    # Stripe.js: confirmCardPayment(clientSecret, {payment_method: "pm_..."}).
    pm = add_card(client, customer, VISA, default=False)
    confirmed = as_stripe_js(
        emulator, f"/v1/payment_intents/{pi_id}/confirm", secret.client_secret, payment_method=pm
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    # Without the client secret the publishable key is not enough.
    refused = httpx.post(
        f"{emulator.base}/v1/payment_intents/{pi_id}/confirm",
        json={"key": TEST_MODE_PUBLISHABLE_KEY},
        timeout=10,
    )
    assert refused.status_code == 401


def test_default_incomplete_uses_the_customers_default_card(client, catalogue):
    customer = make_customer(client)
    sub = subscribe(
        client, customer, catalogue["monthly"], 1, payment_behavior="default_incomplete"
    )
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    pi = client.v1.payment_intents.retrieve(invoice.payment_intent)
    assert pi.status == "requires_confirmation" and pi.payment_method
    client.v1.payment_intents.confirm(pi.id)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


@pytest.mark.parametrize(
    ("card", "code"),
    [
        (DECLINES_ON_CHARGE, "card_declined"),
        (THREE_D_SECURE, "subscription_payment_intent_requires_action"),
    ],
)
def test_error_if_incomplete_leaves_nothing(client, catalogue, card, code):
    customer = make_customer(client, card)
    with pytest.raises(stripe.CardError) as caught:
        subscribe(client, customer, catalogue["monthly"], 5, payment_behavior="error_if_incomplete")
    assert (caught.value.http_status, caught.value.code) == (402, code)
    assert client.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data == []
    assert [
        i for i in client.v1.invoices.list(params={"customer": customer}).data if i.status == "open"
    ] == []


def test_subscription_default_payment_method_comes_before_the_customers(client, catalogue):
    customer = make_customer(client, DECLINES_ON_CHARGE)
    good = add_card(client, customer, VISA, default=False)
    sub = subscribe(
        client,
        customer,
        catalogue["monthly"],
        1,
        default_payment_method=good,
        payment_behavior="error_if_incomplete",
        expand=["default_payment_method"],
    )
    assert sub.status == "active" and sub.default_payment_method.id == good


def test_incomplete_subscriptions_are_listed(client, catalogue):
    customer = make_customer(client, DECLINES_ON_CHARGE)
    sub = subscribe(client, customer, catalogue["monthly"], 1)  # allow_incomplete
    assert sub.status == "incomplete"
    for params in ({"customer": customer, "status": "all"}, {"customer": customer}):
        assert [s.id for s in client.v1.subscriptions.list(params=params).data] == [sub.id]


# 3 and 4. Invoices carry their payment; 3-D Secure -------------------------------------------


def active_subscription(client, catalogue, quantity: int = 2, card: str = VISA) -> tuple[str, Any]:
    customer = make_customer(client, card)
    sub = subscribe(client, customer, catalogue["monthly"], quantity)
    assert sub.status == "active"
    return customer, sub


def test_finalized_invoice_freezes_the_customer_and_numbers(client, catalogue):
    customer = make_customer(client)
    client.v1.customers.update(
        customer, params={"address": {"line1": "1 Main St", "country": "GB"}}
    )
    client.v1.customers.tax_ids.create(customer, params={"type": "gb_vat", "value": "GB123456789"})
    sub = subscribe(client, customer, catalogue["monthly"], 1)
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    client.v1.customers.update(customer, params={"name": "Someone Else"})
    again = client.v1.invoices.retrieve(invoice.id)
    assert (again.customer_name, again.customer_address["line1"]) == ("Ada Lovelace", "1 Main St")
    assert [(t["type"], t["value"]) for t in again.customer_tax_ids] == [("gb_vat", "GB123456789")]
    assert (again.status, again.amount_remaining, again.payments.data[0].status) == (
        "paid",
        0,
        "paid",
    )
    other = subscribe(client, customer, catalogue["monthly"], 1)
    assert client.v1.invoices.retrieve(other.latest_invoice).number != again.number


def pending_3ds_update(client, catalogue) -> tuple[str, Any, Any]:
    """An active subscription whose upgrade waits for 3-D Secure (pending_if_incomplete)."""
    customer, sub = active_subscription(client, catalogue, quantity=2)
    add_card(client, customer, THREE_D_SECURE)
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item_of(sub).id, "price": catalogue["monthly"], "quantity": 5}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    invoice = client.v1.invoices.retrieve(updated.latest_invoice)
    return customer, updated, invoice


def test_3ds_card_invoice_pay_needs_action_then_authentication_applies_the_update(
    client, emulator, catalogue
):
    _, sub, invoice = pending_3ds_update(client, catalogue)
    assert (sub.status, item_of(sub).quantity) == ("active", 2)
    assert sub.pending_update.subscription_items[0].quantity == 5
    assert invoice.status == "open"
    pi = client.v1.payment_intents.retrieve(invoice.payment_intent)
    assert pi.status == "requires_action" and pi.next_action.type == "use_stripe_sdk"

    with pytest.raises(stripe.CardError) as caught:
        client.v1.invoices.pay(invoice.id)
    assert (caught.value.http_status, caught.value.code) == (
        402,
        "invoice_payment_intent_requires_action",
    )
    assert client.v1.invoices.retrieve(invoice.id).status == "open"

    assert (
        authenticate(emulator, invoice.confirmation_secret.client_secret, True)["status"]
        == "succeeded"
    )
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    after = client.v1.subscriptions.retrieve(sub.id)
    assert (after.status, item_of(after).quantity, after.pending_update) == ("active", 5, None)
    assert item_of(after).id == item_of(sub).id


def test_failed_authentication_applies_nothing(client, emulator, catalogue):
    _, sub, invoice = pending_3ds_update(client, catalogue)
    pi = authenticate(emulator, invoice.confirmation_secret.client_secret, False)
    assert pi["status"] == "requires_payment_method"
    assert pi["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    after = client.v1.subscriptions.retrieve(sub.id)
    assert (after.status, item_of(after).quantity) == ("active", 2)
    assert client.v1.invoices.retrieve(invoice.id).status == "open"


def test_failed_authentication_keeps_an_incomplete_subscription(client, emulator, catalogue):
    customer = make_customer(client, THREE_D_SECURE)
    sub = subscribe(client, customer, catalogue["monthly"], 1)  # allow_incomplete
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (sub.status, invoice.status) == ("incomplete", "open")
    authenticate(emulator, invoice.confirmation_secret.client_secret, False)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
    assert client.v1.invoices.retrieve(invoice.id).status == "open"
    # The caller voids the invoice: the subscription expires.
    client.v1.invoices.void_invoice(invoice.id)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete_expired"


def test_declined_card_invoice_pay_is_a_402(client, catalogue):
    customer, sub = active_subscription(client, catalogue)
    add_card(client, customer, DECLINES_ON_CHARGE)
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item_of(sub).id, "quantity": 3}],
            "proration_behavior": "create_prorations",
        },
    )
    invoice = client.v1.invoices.create(
        params={
            "customer": customer,
            "subscription": sub.id,
            "pending_invoice_items_behavior": "include",
        }
    )
    with pytest.raises(stripe.CardError) as caught:
        client.v1.invoices.pay(invoice.id)
    assert (caught.value.http_status, caught.value.code) == (402, "card_declined")
    invoice = client.v1.invoices.retrieve(invoice.id)
    pi = client.v1.payment_intents.retrieve(invoice.payment_intent)
    assert invoice.status == "open"
    assert pi.status == "requires_payment_method" and pi.last_payment_error.code == "card_declined"
    # Paying with another card works.
    good = add_card(client, customer, VISA, default=False)
    assert client.v1.invoices.pay(invoice.id, params={"payment_method": good}).status == "paid"


# 5. Subscription update --------------------------------------------------------------------


def test_declined_pending_if_incomplete_keeps_the_old_quantity(client, catalogue):
    customer, sub = active_subscription(client, catalogue, quantity=2)
    add_card(client, customer, DECLINES_ON_CHARGE)
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item_of(sub).id, "price": catalogue["monthly"], "quantity": 4}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    assert item_of(updated).quantity == 2 and updated.status == "active"
    pending = updated.pending_update
    assert pending.subscription_items[0].quantity == 4
    assert pending.subscription_items[0].price.id == catalogue["monthly"]
    assert pending.expires_at > time.time() + 22 * 3600
    invoice = client.v1.invoices.retrieve(updated.latest_invoice)
    assert invoice.status == "open" and invoice.id != sub.latest_invoice

    # 7. Voiding that invoice discards the pending update.
    voided = client.v1.invoices.void_invoice(invoice.id)
    assert voided.status == "void"
    assert client.v1.payment_intents.retrieve(invoice.payment_intent).status == "canceled"
    after = client.v1.subscriptions.retrieve(sub.id)
    assert (after.pending_update, item_of(after).quantity, after.status) == (None, 2, "active")
    assert invoice.id in {i.id for i in client.v1.invoices.list(params={"customer": customer}).data}


def test_error_if_incomplete_update_is_a_402_and_changes_nothing(client, catalogue):
    customer, sub = active_subscription(client, catalogue, quantity=2)
    add_card(client, customer, DECLINES_ON_CHARGE)
    with pytest.raises(stripe.CardError) as caught:
        client.v1.subscriptions.update(
            sub.id,
            params={
                "items": [{"id": item_of(sub).id, "quantity": 4}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "error_if_incomplete",
            },
        )
    assert caught.value.code == "card_declined"
    after = client.v1.subscriptions.retrieve(sub.id)
    assert (item_of(after).quantity, after.latest_invoice, after.status) == (
        2,
        sub.latest_invoice,
        "active",
    )
    statuses = sorted(i.status for i in client.v1.invoices.list(params={"customer": customer}).data)
    assert statuses == ["paid", "void"]


def test_allow_incomplete_update_applies_and_goes_past_due(client, catalogue):
    customer, sub = active_subscription(client, catalogue, quantity=2)
    add_card(client, customer, DECLINES_ON_CHARGE)
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item_of(sub).id, "quantity": 4}],
            "proration_behavior": "always_invoice",
        },
    )
    assert (updated.status, item_of(updated).quantity) == ("past_due", 4)
    good = add_card(client, customer, VISA)
    client.v1.invoices.pay(updated.latest_invoice, params={"payment_method": good})
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_time_based_proration_to_the_cent(client, catalogue):
    customer, sub = active_subscription(client, catalogue, quantity=3)
    start, end = item_of(sub).current_period_start, item_of(sub).current_period_end
    p = start + 9 * DAY + 1234
    client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item_of(sub).id, "quantity": 7}], "proration_date": p}
    )
    fraction = Fraction(end - p, end - start)
    expected = [-round_half_up(800 * 3 * fraction), round_half_up(800 * 7 * fraction)]
    pending = client.v1.invoice_items.list(params={"customer": customer}).data
    assert sorted(ii.amount for ii in pending) == sorted(expected)
    assert all(ii.proration and (ii.period.start, ii.period.end) == (p, end) for ii in pending)
    descriptions = sorted(ii.description for ii in pending)
    assert descriptions[0].startswith("Remaining time on 7 × ") and descriptions[1].startswith(
        "Unused time on 3 × "
    )

    # The next invoice picks them up (and only them).
    invoice = client.v1.invoices.create(
        params={
            "customer": customer,
            "subscription": sub.id,
            "pending_invoice_items_behavior": "include",
        }
    )
    assert invoice.status == "draft" and invoice.total == sum(expected)
    paid = client.v1.invoices.pay(invoice.id)
    assert (paid.status, paid.amount_paid) == ("paid", sum(expected))
    assert all(line.parent.subscription_item_details.proration for line in paid.lines.data)


def test_proration_behavior_none_adds_no_lines(client, catalogue):
    customer, sub = active_subscription(client, catalogue, quantity=3)
    updated = client.v1.subscriptions.update(
        sub.id,
        params={"items": [{"id": item_of(sub).id, "quantity": 1}], "proration_behavior": "none"},
    )
    assert item_of(updated).quantity == 1 and updated.latest_invoice == sub.latest_invoice
    assert client.v1.invoice_items.list(params={"customer": customer}).data == []


# 6. Preview == invoice -------------------------------------------------------------------------


def test_preview_equals_the_invoice_of_a_quantity_change(client, catalogue):
    customer, sub = active_subscription(client, catalogue, quantity=4)
    client.v1.customers.update(customer, params={"balance": -300})  # a credit of $3
    p = item_of(sub).current_period_start + 3 * DAY + 17
    items = [{"id": item_of(sub).id, "price": catalogue["monthly"], "quantity": 9}]
    preview = client.v1.invoices.create_preview(
        params={
            "customer": customer,
            "subscription": sub.id,
            "subscription_details": {
                "items": items,
                "proration_behavior": "always_invoice",
                "proration_date": p,
            },
        }
    )
    updated = client.v1.subscriptions.update(
        sub.id, params={"items": items, "proration_behavior": "always_invoice", "proration_date": p}
    )
    invoice = client.v1.invoices.retrieve(updated.latest_invoice)
    assert [line.amount for line in preview.lines.data] == [
        line.amount for line in invoice.lines.data
    ]
    assert preview.amount_due == invoice.amount_due == invoice.amount_paid
    assert invoice.status == "paid" and item_of(updated).quantity == 9
    assert invoice.subtotal - 300 == invoice.amount_due


def test_preview_equals_the_invoice_of_a_switch_to_yearly(client, catalogue):
    customer, sub = active_subscription(client, catalogue, quantity=4)
    p = item_of(sub).current_period_start + 11 * DAY
    items = [{"id": item_of(sub).id, "price": catalogue["yearly"], "quantity": 4}]
    preview = client.v1.invoices.create_preview(
        params={
            "customer": customer,
            "subscription": sub.id,
            "subscription_details": {"items": items, "proration_date": p},
        }
    )
    before = time.time()
    updated = client.v1.subscriptions.update(sub.id, params={"items": items, "proration_date": p})
    invoice = client.v1.invoices.retrieve(updated.latest_invoice)
    assert preview.amount_due == invoice.amount_due == invoice.amount_paid
    credit, year = invoice.lines.data
    start, end = item_of(sub).current_period_start, item_of(sub).current_period_end
    assert credit.amount == -round_half_up(3200 * Fraction(end - p, end - start))
    assert (year.amount, year.parent.subscription_item_details.proration) == (32000, False)
    assert item_of(updated).price.recurring.interval == "year"
    period = item_of(updated).current_period_start, item_of(updated).current_period_end
    assert before - 2 <= period[0] <= time.time() + 1
    assert (period[1] - period[0]) // DAY in (365, 366)


def test_preview_without_changes_is_the_next_renewal(client, catalogue):
    customer, sub = active_subscription(client, catalogue, quantity=2)
    preview = client.v1.invoices.create_preview(
        params={"customer": customer, "subscription": sub.id}
    )
    (line,) = preview.lines.data
    assert (line.amount, line.period.start) == (1600, item_of(sub).current_period_end)
    assert client.v1.invoice_items.list(params={"customer": customer}).data == []


# 8. Cancel; cancellation_details -------------------------------------------------------------


def test_cancellation_details_are_stored(client, catalogue):
    _, sub = active_subscription(client, catalogue)
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "cancel_at_period_end": True,
            "cancellation_details": {"comment": "Too pricey", "feedback": "too_expensive"},
        },
    )
    assert updated.cancel_at_period_end
    assert (updated.cancellation_details.comment, updated.cancellation_details.feedback) == (
        "Too pricey",
        "too_expensive",
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, params={"cancellation_details": {"feedback": "meh"}})
    canceled = client.v1.subscriptions.cancel(
        sub.id, params={"cancellation_details": {"comment": "Bye", "feedback": "unused"}}
    )
    assert canceled.status == "canceled"
    assert (
        canceled.cancellation_details.comment,
        canceled.cancellation_details.feedback,
        canceled.cancellation_details.reason,
    ) == ("Bye", "unused", "cancellation_requested")


def test_cancelling_an_incomplete_subscription_voids_its_first_invoice(client, catalogue):
    customer = make_customer(client, DECLINES_ON_CHARGE)
    sub = subscribe(client, customer, catalogue["monthly"], 1)
    assert sub.status == "incomplete"
    assert client.v1.subscriptions.cancel(sub.id).status == "canceled"
    assert client.v1.invoices.retrieve(sub.latest_invoice).status == "void"


# 11. Idempotent requests ---------------------------------------------------------------------


def test_idempotency_key_replays_and_refuses_other_parameters(client, emulator):
    key = uid()
    options = {"idempotency_key": key}
    first = client.v1.customers.create(params={"name": "Once"}, options=options)
    again = client.v1.customers.create(params={"name": "Once"}, options=options)
    assert again.id == first.id
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(params={"name": "Twice"}, options=options)

    headers = {"Authorization": f"Bearer {TEST_MODE_SECRET_KEY}", "Idempotency-Key": uid()}
    replies = [
        httpx.post(
            f"{emulator.base}/v1/customers",
            data={"name": "X", "email": "x@y.z"},
            headers=headers,
            timeout=10,
        )
        for _ in range(2)
    ]
    assert replies[0].json() == replies[1].json()
    assert replies[1].headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in replies[0].headers
    # Errors are replayed too.
    error_headers = {**headers, "Idempotency-Key": uid()}
    errors = [
        httpx.post(
            f"{emulator.base}/v1/customers/cus_missing",
            data={"name": "X"},
            headers=error_headers,
            timeout=10,
        )
        for _ in range(2)
    ]
    assert [e.status_code for e in errors] == [404, 404]
    assert errors[1].headers["Idempotent-Replayed"] == "true"


# 12. Tax IDs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "country"),
    [
        ("eu_vat", "DE123456789", "DE"),
        ("gb_vat", "GB123456789", "GB"),
        ("us_ein", "12-3456789", "US"),
        ("ch_vat", "CHE-123.456.789 MWST", "CH"),
        ("ca_bn", "123456789", "CA"),
        ("no_vat", "123456789MVA", "NO"),
        ("br_cnpj", "01.234.456/5432-10", "BR"),
    ],
)
def test_customer_tax_ids(client, kind, value, country):
    customer = make_customer(client, card=None)
    tax_id = client.v1.customers.tax_ids.create(customer, params={"type": kind, "value": value})
    assert (tax_id.type, tax_id.value, tax_id.country) == (kind, value, country)
    assert [t.id for t in client.v1.customers.tax_ids.list(customer).data] == [tax_id.id]
    listed = client.v1.customers.tax_ids.list(customer, params={"limit": 100})
    assert [t.id for t in listed.data] == [tax_id.id] and not listed.has_more
    client.v1.customers.tax_ids.delete(customer, tax_id.id)
    assert client.v1.customers.tax_ids.list(customer).data == []


def test_bad_tax_id_is_refused(client):
    customer = make_customer(client, card=None)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.tax_ids.create(customer, params={"type": "gb_vat", "value": "nope"})
    assert refused.value.code == "tax_id_invalid"


# 10. Events ------------------------------------------------------------------------------------


@pytest.fixture
def own_emulator(run_emulator) -> Iterator[Any]:
    with run_emulator("--in-memory") as running:
        yield running


@pytest.fixture
def webhook_inbox() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Inbox(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Inbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def test_events_are_sent(own_emulator, webhook_inbox, run_emulator):
    url, received = webhook_inbox
    assert (
        httpx.post(
            f"{own_emulator.base}/_config/webhooks/parity",
            data={"url": url, "secret": "whsec_test"},
            timeout=5,
        ).status_code
        == 200
    )
    client = make_client(own_emulator.base)
    product = make_product(client)
    monthly = make_price(client, product, 800).id
    customer, sub = active_subscription(client, {"monthly": monthly}, quantity=1)
    add_card(client, customer, THREE_D_SECURE)
    pending = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item_of(sub).id, "quantity": 2}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    client.v1.invoices.void_invoice(pending.latest_invoice)
    client.v1.subscriptions.cancel(sub.id)

    wanted = {
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_action_required",
        "invoice.voided",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "price.created",
    }
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not wanted <= {e["type"] for e in received}:
        time.sleep(0.1)
    assert wanted <= {e["type"] for e in received}
    updated = [e for e in received if e["type"] == "customer.subscription.updated"]
    assert any(e["data"]["object"]["id"] == sub.id for e in updated)


# Stripe.js --------------------------------------------------------------------------------------


def test_stripe_js_confirms_before_showing_the_3ds_box(emulator, tmp_path):
    response = httpx.get(f"{emulator.base}/js.stripe.com/v3/", timeout=5)
    assert response.status_code == 200
    js = response.text
    assert "billing_app.stripe.emulator" in js and "Complete authentication" in js
    # The override is appended after localstripe's own Stripe, and confirms first.
    override = js.index("billing_app.stripe.emulator")
    assert js.index("Stripe = (apiKey)") < override < js.index("/confirm'", override)
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    path = tmp_path / "stripe.js"
    path.write_text(js)
    subprocess.run([node, "--check", str(path)], check=True, capture_output=True, timeout=30)


def test_confirm_answers_like_stripe_for_a_succeeded_intent(client, emulator, catalogue):
    customer = make_customer(client)
    sub = subscribe(client, customer, catalogue["monthly"], 1, expand=["latest_invoice"])
    secret = sub.latest_invoice.confirmation_secret.client_secret
    pi = secret.split("_secret_")[0]
    again = as_stripe_js(emulator, f"/v1/payment_intents/{pi}/confirm", secret)
    assert again.status_code == 400
    error = again.json()["error"]
    assert error["code"] == "payment_intent_unexpected_state"
    assert error["payment_intent"]["status"] == "succeeded"


# A headless page for the served Stripe.js: no DOM beyond what it touches, the box
# answered by `MODAL_ANSWER`, the real fetch against the emulator.
NODE_HARNESS = r"""
const fs = require('fs'), vm = require('vm');
const [jsPath, base, secret, paymentMethod, answer] = process.argv.slice(2);
const context = {console: {log() {}}, fetch, JSON, Promise, String, Object,
                 document: {currentScript: {src: base + '/js.stripe.com/v3/'},
                            getElementsByTagName: () => []}};
vm.createContext(context);
vm.runInContext(fs.readFileSync(jsPath, 'utf8'), context);
context.boxes = 0;
vm.runInContext('openModal = async () => { boxes += 1; return ' + answer + '; }', context);
const stripe = context.Stripe('pk_test_localstripe');
const data = paymentMethod ? {payment_method: paymentMethod} : undefined;
stripe.confirmCardPayment(secret, data).then((result) => {
  process.stdout.write(JSON.stringify({result, boxes: context.boxes}));
});
"""


@pytest.fixture(scope="module")
def stripe_js_page(emulator, tmp_path_factory):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    folder = tmp_path_factory.mktemp("stripe-js")
    (folder / "stripe.js").write_text(
        httpx.get(f"{emulator.base}/js.stripe.com/v3/", timeout=5).text
    )
    (folder / "page.js").write_text(NODE_HARNESS)

    def confirm_card_payment(
        secret: str, payment_method: str | None = None, box_answer: bool = True
    ) -> dict[str, Any]:
        done = subprocess.run(
            [
                node,
                str(folder / "page.js"),
                str(folder / "stripe.js"),
                emulator.base,
                secret,
                payment_method or "",
                "true" if box_answer else "false",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return json.loads(done.stdout)

    return confirm_card_payment


def incomplete_first_invoice(client, catalogue, card: str | None) -> tuple[Any, str]:
    customer = make_customer(client, card)
    sub = subscribe(
        client,
        customer,
        catalogue["monthly"],
        1,
        payment_behavior="default_incomplete",
        expand=["latest_invoice"],
    )
    return sub, sub.latest_invoice.confirmation_secret.client_secret


def test_stripe_js_confirm_card_payment_with_a_payment_method(client, catalogue, stripe_js_page):
    sub, secret = incomplete_first_invoice(client, catalogue, card=None)
    pm = add_card(client, sub.customer, VISA, default=False)
    page = stripe_js_page(secret, pm)
    assert page["boxes"] == 0 and page["result"]["paymentIntent"]["status"] == "succeeded"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    # Confirming a succeeded PaymentIntent again resolves it, without a box.
    page = stripe_js_page(secret)
    assert page["boxes"] == 0 and page["result"]["paymentIntent"]["status"] == "succeeded"


@pytest.mark.parametrize("authenticated", [True, False])
def test_stripe_js_shows_the_3ds_box_only_when_needed(
    client, catalogue, stripe_js_page, authenticated
):
    sub, secret = incomplete_first_invoice(client, catalogue, card=THREE_D_SECURE)
    page = stripe_js_page(secret, box_answer=authenticated)  # no data: the intent's own card
    assert page["boxes"] == 1
    after = client.v1.subscriptions.retrieve(sub.id)
    invoice = client.v1.invoices.retrieve(after.latest_invoice)
    if authenticated:
        assert page["result"]["paymentIntent"]["status"] == "succeeded"
        assert (after.status, invoice.status) == ("active", "paid")
    else:
        assert page["result"]["error"]["code"] == "payment_intent_authentication_failure"
        assert (after.status, invoice.status) == ("incomplete", "open")


def test_stripe_js_reports_a_decline(client, catalogue, stripe_js_page):
    sub, secret = incomplete_first_invoice(client, catalogue, card=None)
    pm = add_card(client, sub.customer, DECLINES_ON_CHARGE, default=False)
    page = stripe_js_page(secret, pm)
    assert page["boxes"] == 0 and page["result"]["error"]["code"] == "card_declined"
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
