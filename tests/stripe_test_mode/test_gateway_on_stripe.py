"""The gateway against Stripe test mode: the same calls the app makes, on the real API.

Test clocks stand in for time (a renewal is the clock advanced past the period's end).
Stripe's 3-D Secure challenge can only be passed in a browser; here it is only asked for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from billing_app.plans import Interval
from billing_app.services.seeding import paid_subscription
from billing_app.stripe.client import StripeClient
from billing_app.stripe.errors import GatewayError
from billing_app.stripe.snapshots import BillingDetails, SubscriptionSnapshot


def customer_with(client: StripeClient, key: str, card: str, clock: str | None = None) -> str:
    params = {
        "name": "Stripe test mode",
        "email": "billing-tests@example.com",
        "metadata": {"suite": "billing"},
    }
    if clock:
        params["test_clock"] = clock
    customer = client._call(
        client._v1.customers.create, params=params, options={"idempotency_key": key}
    )
    client.attach_default_card(str(customer["id"]), card, idempotency_key=key)
    return str(customer["id"])


def test_catalogue_prices_by_lookup_key(client: StripeClient) -> None:
    first, second = client.ensure_catalogue(), client.ensure_catalogue()
    assert first == second
    assert first.monthly_price_id.startswith("price_") and first.yearly_price_id.startswith(
        "price_"
    )


def test_add_licenses_charges_what_the_preview_said(client: StripeClient, key: str) -> None:
    catalogue = client.ensure_catalogue()
    customer = customer_with(client, key, "pm_card_visa")
    subscription = paid_subscription(client, customer, catalogue.monthly_price_id, 3, key=key)
    when = int(time.time())
    preview = client.preview_change(
        subscription, price_id=subscription.price_id, quantity=5, proration_date=when
    )
    changed, payment = client.change_subscription(
        subscription,
        price_id=subscription.price_id,
        quantity=5,
        proration_date=when,
        idempotency_key=f"{key}:add",
    )
    assert changed.quantity == 5 and changed.pending_update is None
    assert payment is not None and payment.paid and payment.amount_paid == preview.amount_due


def test_a_declined_change_stays_pending_and_is_discarded(client: StripeClient, key: str) -> None:
    catalogue = client.ensure_catalogue()
    customer = customer_with(client, key, "pm_card_visa")
    subscription = paid_subscription(client, customer, catalogue.monthly_price_id, 3, key=key)
    client.attach_default_card(
        customer,
        "pm_card_chargeCustomerFail",
        idempotency_key=f"{key}:failing",
        subscription_id=subscription.id,
    )
    changed, payment = client.change_subscription(
        subscription,
        price_id=subscription.price_id,
        quantity=9,
        proration_date=int(time.time()),
        idempotency_key=f"{key}:add",
    )
    assert changed.quantity == 3 and changed.pending_update is not None
    assert payment is not None and payment.failed
    client.void_invoice(payment.invoice_id, idempotency_key=key)
    after = client.retrieve_subscription(subscription.id)
    assert after.quantity == 3 and after.pending_update is None


def test_a_3d_secure_card_asks_the_customer(client: StripeClient, key: str) -> None:
    catalogue = client.ensure_catalogue()
    customer = customer_with(client, key, "pm_card_visa")
    subscription = paid_subscription(client, customer, catalogue.monthly_price_id, 1, key=key)
    client.attach_default_card(
        customer,
        "pm_card_authenticationRequired",
        idempotency_key=f"{key}:sca",
        subscription_id=subscription.id,
    )
    changed, payment = client.change_subscription(
        subscription,
        price_id=subscription.price_id,
        quantity=2,
        proration_date=int(time.time()),
        idempotency_key=f"{key}:add",
    )
    assert changed.quantity == 1 and payment is not None and payment.needs_customer
    assert payment.client_secret and payment.client_secret.startswith("pi_")
    client.void_invoice(payment.invoice_id, idempotency_key=key)


def test_first_payment_left_for_the_page_then_discarded(client: StripeClient, key: str) -> None:
    catalogue = client.ensure_catalogue()
    customer = customer_with(client, key, "pm_card_visa")
    subscription, payment = client.create_subscription(
        customer, catalogue.monthly_price_id, 2, idempotency_key=key, created_by=f"test:{key}"
    )
    assert subscription.status == "incomplete" and payment.client_secret
    assert [s.id for s in client.customer_subscriptions(customer)] == [subscription.id]
    client.discard_incomplete(subscription.id, idempotency_key=key)
    assert client.retrieve_subscription(subscription.id).status in (
        "canceled",
        "incomplete_expired",
    )


@contextmanager
def clock_for(client: StripeClient, key: str) -> Iterator[str]:
    clock = client._call(
        client._v1.test_helpers.test_clocks.create,
        params={"frozen_time": int(time.time()), "name": f"renewal {key[:8]}"},
    )
    try:
        yield str(clock["id"])
    finally:
        try:
            client._call(client._v1.test_helpers.test_clocks.delete, clock["id"])
        except GatewayError:
            pytest.fail("could not delete the test clock")


def renew(client: StripeClient, clock: str, subscription: SubscriptionSnapshot) -> None:
    """Advance the clock past the period's end (it advances asynchronously)."""
    assert subscription.current_period_end is not None
    target = int(subscription.current_period_end.timestamp()) + 3600
    client._call(client._v1.test_helpers.test_clocks.advance, clock, params={"frozen_time": target})
    for _ in range(60):
        if client._call(client._v1.test_helpers.test_clocks.retrieve, clock)["status"] == "ready":
            return
        time.sleep(2)


def test_a_renewal_on_a_test_clock(client: StripeClient, key: str) -> None:
    with clock_for(client, key) as clock:
        catalogue = client.ensure_catalogue()
        customer = customer_with(client, key, "pm_card_visa", clock=clock)
        subscription = paid_subscription(client, customer, catalogue.monthly_price_id, 2, key=key)
        renew(client, clock, subscription)
        renewed = client.retrieve_subscription(subscription.id)
        assert renewed.current_period_start is not None
        assert subscription.current_period_end is not None
        assert renewed.current_period_start >= subscription.current_period_end
        assert len(client.invoice_page(customer).invoices) >= 2


def test_a_scheduled_reduction_kept_across_a_purchase_applies_at_renewal(
    client: StripeClient, key: str
) -> None:
    """Subscription Schedules as the app uses them, and a direct item update (Purchase Additional
    License) on a subscription a schedule manages."""
    with clock_for(client, key) as clock:
        catalogue = client.ensure_catalogue()
        customer = customer_with(client, key, "pm_card_visa", clock=clock)
        subscription = paid_subscription(client, customer, catalogue.monthly_price_id, 10, key=key)
        scheduled = client.schedule_renewal_change(
            subscription,
            price_id=subscription.price_id,
            interval=Interval.MONTH,
            quantity=8,
            idempotency_key=f"{key}:reduce",
        )
        assert scheduled.quantity == 10 and scheduled.scheduled is not None
        assert scheduled.scheduled.quantity == 8
        changed, payment = client.change_subscription(
            scheduled,
            price_id=scheduled.price_id,
            quantity=12,
            proration_date=int(time.time()),
            idempotency_key=f"{key}:add",
        )
        assert changed.quantity == 12 and payment is not None and payment.paid
        kept = client.schedule_renewal_change(
            changed,
            price_id=changed.price_id,
            interval=Interval.MONTH,
            quantity=10,
            idempotency_key=f"{key}:keep",
        )
        assert kept.quantity == 12 and kept.scheduled is not None and kept.scheduled.quantity == 10
        renew(client, clock, kept)
        renewed = client.retrieve_subscription(subscription.id)
        # The schedule stays attached through its last phase (released at its end).
        assert renewed.quantity == 10 and renewed.scheduled is None


def test_billing_details_replace_the_tax_id_and_show_on_the_next_invoice(
    client: StripeClient, key: str
) -> None:
    catalogue = client.ensure_catalogue()
    customer = customer_with(client, key, "pm_card_visa")
    berlin = BillingDetails(
        name="Acme GmbH",
        email="billing-tests@example.com",
        line1="Friedrichstraße 1",
        city="Berlin",
        postal_code="10117",
        country="DE",
        tax_id_type="eu_vat",
        tax_id_value="DE123456789",
    )
    assert client.save_billing_details(customer, berlin, idempotency_key=f"{key}:de") == berlin
    london = BillingDetails(
        name="Acme Ltd",
        email="billing-tests@example.com",
        line1="1 Poultry",
        city="London",
        postal_code="EC2R 8EJ",
        country="GB",
        tax_id_type="gb_vat",
        tax_id_value="GB123456789",
    )
    assert client.save_billing_details(customer, london, idempotency_key=f"{key}:gb") == london
    listed = client._call(client._v1.customers.tax_ids.list, customer)
    assert [(t["type"], t["value"]) for t in listed["data"]] == [("gb_vat", "GB123456789")]
    subscription = paid_subscription(client, customer, catalogue.monthly_price_id, 1, key=key)
    invoice = client.retrieve_invoice(str(subscription.latest_invoice_id))
    assert (invoice.customer_name, invoice.customer_tax_ids) == ("Acme Ltd", ("GB123456789",))
    with pytest.raises(GatewayError) as refused:
        client.save_billing_details(
            customer,
            BillingDetails(
                name="X",
                email="x@example.com",
                country="GB",
                tax_id_type="gb_vat",
                tax_id_value="GB1",
            ),
            idempotency_key=f"{key}:bad",
        )
    assert refused.value.code == "tax_id_invalid"
