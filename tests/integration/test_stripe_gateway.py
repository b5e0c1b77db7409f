"""The Stripe gateway against a real localstripe started by our own launcher."""

from __future__ import annotations

import os
import socket
import stat
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
import stripe as sdk  # its exceptions, to check how the gateway maps them

from billing_app.errors import MSG_BUSY
from billing_app.services.seeding import paid_subscription
from billing_app.settings import Settings
from billing_app.stripe import client as stripe_client
from billing_app.stripe import errors, parsing, snapshots
from billing_app.stripe.client import StripeClient
from billing_app.stripe.errors import GatewayError

Emulator = Any  # conftest.Emulator (conftest modules are not importable by name)
SettingsFor = Callable[..., Settings]


def key() -> str:
    return uuid.uuid4().hex


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def client(settings: Settings) -> StripeClient:
    return StripeClient(settings)


def subscribe(
    client: StripeClient, customer_id: str, price_id: str, quantity: int
) -> snapshots.SubscriptionSnapshot:
    return paid_subscription(client, customer_id, price_id, quantity, key=key())


def new_customer(client: StripeClient, card: str | None = "pm_card_visa") -> str:
    customer_id = client.create_customer(
        name="Acme Corp", email="admin@acme.test", account_ref="acct-1", idempotency_key=key()
    )
    if card:
        client.attach_default_card(customer_id, card, idempotency_key=key())
    return customer_id


# Catalogue -------------------------------------------------------------------


def test_catalogue_is_idempotent_with_the_configured_prices(
    client: StripeClient, emulator: Emulator
) -> None:
    first = client.ensure_catalogue()
    second = client.ensure_catalogue()

    assert first == second
    assert first.product_id == "unlimited-version"
    assert emulator.get("/v1/products/unlimited-version").json()["name"] == "Unlimited Version"
    for price_id, amount, interval, lookup_key in (
        (first.monthly_price_id, 800, "month", "connector_unlimited_monthly"),
        (first.yearly_price_id, 8000, "year", "connector_unlimited_yearly"),
    ):
        price = emulator.get(f"/v1/prices/{price_id}").json()
        assert (
            price["unit_amount"],
            price["currency"],
            price["recurring"]["interval"],
            price["recurring"]["usage_type"],
            price["product"],
            price["lookup_key"],
        ) == (amount, "usd", interval, "licensed", "unlimited-version", lookup_key)
        found = emulator.get(f"/v1/prices?lookup_keys[]={lookup_key}&active=true").json()["data"]
        assert [p["id"] for p in found] == [price_id]


def test_catalogue_from_many_threads_at_once(
    emulator: Emulator, tmp_path: Path, settings_for: SettingsFor
) -> None:
    settings = settings_for(
        emulator.port,
        tmp_path,
        billing_price_monthly_cents=999,
        billing_price_yearly_cents=9999,
        billing_currency="eur",
    )
    results: list[snapshots.Catalogue | BaseException] = []

    def run() -> None:
        try:
            results.append(StripeClient(settings).ensure_catalogue())
        except BaseException as exc:  # noqa: BLE001 (reported by the assert below)
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(isinstance(result, snapshots.Catalogue) for result in results), results
    assert len(set(results)) == 1  # one Price per terms, whoever created it


def test_a_price_change_makes_a_new_price_and_moves_the_lookup_key(
    client: StripeClient, emulator: Emulator, tmp_path: Path, settings_for: SettingsFor
) -> None:
    old = client.ensure_catalogue()
    changed = StripeClient(
        settings_for(emulator.port, tmp_path, billing_price_monthly_cents=4321)
    ).ensure_catalogue()

    assert changed.monthly_price_id != old.monthly_price_id
    assert changed.yearly_price_id == old.yearly_price_id
    assert emulator.get(f"/v1/prices/{changed.monthly_price_id}").json()["unit_amount"] == 4321
    # The old Price stays (invoices point at it) but no longer answers to the lookup key.
    assert emulator.get(f"/v1/prices/{old.monthly_price_id}").json()["lookup_key"] is None
    assert client.ensure_catalogue().monthly_price_id != changed.monthly_price_id


# Customers and cards -------------------------------------------------------------


def test_customer_and_default_card(client: StripeClient, emulator: Emulator) -> None:
    customer_id = new_customer(client, card=None)
    assert client.customer_exists(customer_id)
    assert not client.customer_exists("cus_doesnotexist")
    assert client.default_card(customer_id) is None
    assert emulator.get(f"/v1/customers/{customer_id}").json()["metadata"] == {
        "account_ref": "acct-1"
    }

    card = client.attach_default_card(customer_id, "pm_card_visa", idempotency_key=key())

    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, 2030)
    assert card.payment_method_id.startswith("pm_") and card.payment_method_id != "pm_card_visa"
    assert client.default_card(customer_id) == card
    stored = emulator.get(f"/v1/customers/{customer_id}").json()
    assert stored["invoice_settings"]["default_payment_method"] == card.payment_method_id


def test_retrying_a_card_change_after_the_attach_went_through(client: StripeClient) -> None:
    customer_id = new_customer(client, card=None)
    first = client.attach_default_card(customer_id, "pm_card_visa", idempotency_key=key())
    # Same already-attached payment method again: no second attach, still default.
    again = client.attach_default_card(customer_id, first.payment_method_id, idempotency_key=key())
    assert again == first == client.default_card(customer_id)


def test_declined_card_is_refused_at_attach_and_old_card_kept(client: StripeClient) -> None:
    customer_id = new_customer(client)
    before = client.default_card(customer_id)

    with pytest.raises(GatewayError) as caught:
        client.attach_default_card(
            customer_id, "pm_card_visa_chargeDeclined", idempotency_key=key()
        )

    assert caught.value.message == "Your card was declined."
    assert caught.value.code == "card_declined"
    assert not caught.value.retryable
    assert client.default_card(customer_id) == before


def test_customer_exists_is_false_once_deleted(client: StripeClient, emulator: Emulator) -> None:
    import httpx

    customer_id = new_customer(client, card=None)
    httpx.delete(
        f"{emulator.base}/v1/customers/{customer_id}",
        timeout=5,
        headers={"Authorization": "Bearer sk_test_x"},
    ).raise_for_status()
    assert not client.customer_exists(customer_id)


# Subscriptions and invoices ----------------------------------------------------------


def test_monthly_subscription_for_ten_licenses_is_charged_now(client: StripeClient) -> None:
    catalogue = client.ensure_catalogue()
    customer_id = new_customer(client)

    snapshot = subscribe(client, customer_id, catalogue.monthly_price_id, 10)

    assert (
        snapshot.customer_id,
        snapshot.status,
        snapshot.price_id,
        snapshot.interval,
        snapshot.quantity,
        snapshot.unit_amount,
        snapshot.currency,
    ) == (customer_id, "active", catalogue.monthly_price_id, "month", 10, 800, "usd")
    assert snapshot.current_period_end and snapshot.current_period_end > now()
    assert snapshot.current_period_start and snapshot.current_period_start <= now()
    assert (snapshot.current_period_end - snapshot.current_period_start).days in (28, 29, 30, 31)
    assert not snapshot.cancel_at_period_end and snapshot.cancel_at is None
    assert client.retrieve_subscription(snapshot.id) == snapshot

    page = client.invoice_page(customer_id)
    invoices, has_more = page.invoices, page.has_more
    assert not has_more
    assert [(i.status, i.total, i.amount_paid, i.currency) for i in invoices] == [
        ("paid", 8000, 8000, "usd")
    ]
    invoice = invoices[0]
    assert invoice.subtotal == 8000 and invoice.tax == 0 and invoice.amount_due == 8000
    assert invoice.period_end == snapshot.current_period_end
    (line,) = invoice.lines
    assert (line.quantity, line.unit_amount, line.amount, line.proration) == (10, 800, 8000, False)
    assert line.description == "Unlimited Version"

    assert client.retrieve_invoice(invoice.id, customer_id=customer_id) == invoice


def test_yearly_subscription(client: StripeClient) -> None:
    catalogue = client.ensure_catalogue()
    customer_id = new_customer(client)
    snapshot = subscribe(client, customer_id, catalogue.yearly_price_id, 3)
    assert (snapshot.interval, snapshot.quantity, snapshot.unit_amount) == ("year", 3, 8000)
    assert snapshot.current_period_end and snapshot.current_period_start
    assert (snapshot.current_period_end - snapshot.current_period_start).days in (365, 366)
    (invoice,) = client.invoice_page(customer_id).invoices
    assert invoice.total == 24000


def test_another_customers_invoice_is_not_found(client: StripeClient) -> None:
    catalogue = client.ensure_catalogue()
    owner, other = new_customer(client), new_customer(client)
    subscribe(client, owner, catalogue.monthly_price_id, 1)
    (invoice,) = client.invoice_page(owner).invoices

    with pytest.raises(GatewayError) as caught:
        client.retrieve_invoice(invoice.id, customer_id=other)
    assert caught.value.code == "resource_missing"
    assert client.invoice_page(other).invoices == []


def test_invoice_pages_are_newest_first(client: StripeClient, emulator: Emulator) -> None:
    catalogue = client.ensure_catalogue()
    customer_ids = [new_customer(client) for _ in range(3)]
    # Three invoices for one customer: one per subscription.
    for _ in range(3):
        subscribe(client, customer_ids[0], catalogue.monthly_price_id, 1)
    first = client.invoice_page(customer_ids[0], limit=2)
    page = first.invoices
    assert len(page) == 2 and first.has_more
    second = client.invoice_page(customer_ids[0], limit=2, starting_after=first.next_cursor)
    rest = second.invoices
    assert len(rest) == 1 and not second.has_more
    everything = page + rest
    assert len({i.id for i in everything}) == 3
    assert [i.created for i in everything] == sorted((i.created for i in everything), reverse=True)


def test_card_failing_on_first_charge_leaves_no_subscription(
    client: StripeClient, emulator: Emulator
) -> None:
    catalogue = client.ensure_catalogue()
    # Attaching this card succeeds; charging it fails.
    customer_id = new_customer(client, card="pm_card_chargeCustomerFail")
    subscription, first = client.create_subscription(
        customer_id, catalogue.monthly_price_id, 5, idempotency_key=key()
    )
    payment = client.pay_invoice(first.invoice_id, idempotency_key=key())
    assert payment.failed and payment.failure_message == "Your card was declined."
    assert client.retrieve_subscription(subscription.id).status == "incomplete"

    client.discard_incomplete(subscription.id, idempotency_key=key())

    subs = emulator.get(f"/v1/subscriptions?customer={customer_id}&status=all").json()["data"]
    assert [s["status"] for s in subs] in (["canceled"], ["incomplete_expired"])
    invoices = client.invoice_page(customer_id).invoices
    assert [i.status for i in invoices] == ["void"]
    assert all(i.amount_paid == 0 for i in invoices)


def test_quantity_must_be_positive(client: StripeClient) -> None:
    with pytest.raises(ValueError):
        client.create_subscription("cus_x", "price_x", 0, idempotency_key=key())


# Failures of the service itself --------------------------------------------------------


def assert_unreachable(caught: pytest.ExceptionInfo[GatewayError]) -> None:
    assert caught.value.message == (
        "Payment service unreachable, nothing was changed. Please try again."
    )
    assert caught.value.code == "unreachable"
    assert caught.value.retryable


def test_unreachable_service_is_a_retryable_gateway_error(
    tmp_path: Path, settings_for: SettingsFor, closed_port: int
) -> None:
    client = StripeClient(settings_for(closed_port, tmp_path))

    with pytest.raises(GatewayError) as caught:
        client.ensure_catalogue()
    assert_unreachable(caught)
    with pytest.raises(GatewayError) as caught:
        client.create_customer(name="A", email="a@a.test", account_ref="a", idempotency_key=key())
    assert_unreachable(caught)
    with pytest.raises(GatewayError) as caught:
        client.register_test_webhook("http://127.0.0.1:1/hook", "whsec_test")
    assert_unreachable(caught)


def test_no_answer_is_a_timeout_not_unreachable(
    tmp_path: Path, settings_for: SettingsFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe_client, "_TIMEOUT", (2.0, 0.5))
    with socket.socket() as silent:  # the kernel accepts connections; nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = StripeClient(settings_for(silent.getsockname()[1], tmp_path))
        with pytest.raises(GatewayError) as caught:
            client.create_customer(
                name="A", email="a@a.test", account_ref="a", idempotency_key=key()
            )
    # The write may have happened: the message must not say that nothing changed.
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)
    assert "nothing was changed" not in caught.value.message


def test_emulator_stopped_mid_session(
    tmp_path: Path, settings_for: SettingsFor, run_emulator: Any
) -> None:
    with run_emulator("--in-memory") as running:
        client = StripeClient(settings_for(running.port, tmp_path))
        customer_id = new_customer(client, card=None)

    with pytest.raises(GatewayError) as caught:
        client.default_card(customer_id)
    assert_unreachable(caught)


@pytest.mark.parametrize(
    ("make", "message", "code", "retryable"),
    [
        (
            lambda s: s.CardError(
                "x",
                None,
                "card_declined",
                json_body={"error": {"decline_code": "insufficient_funds"}},
            ),
            "Your card has insufficient funds.",
            "insufficient_funds",
            False,
        ),
        (
            lambda s: s.CardError("x", None, "expired_card"),
            "Your card has expired.",
            "expired_card",
            False,
        ),
        (
            lambda s: s.CardError("x", "number", "incorrect_number"),
            "The card number is incorrect.",
            "incorrect_number",
            False,
        ),
        (
            lambda s: s.CardError("x", None, "processing_error"),
            "Your card could not be processed. Please try again.",
            "processing_error",
            True,
        ),
        (
            lambda s: s.CardError("internal detail", None, "something_new"),
            "Your card was declined.",
            "card_declined",
            False,
        ),
        (
            lambda s: s.InvalidRequestError(
                "x", "exp_year", "invalid_expiry_year", http_status=400
            ),
            "The card's expiration date is invalid.",
            "invalid_expiry_year",
            False,
        ),
        (
            lambda s: s.RateLimitError("x", http_status=429),
            MSG_BUSY,
            "rate_limited",
            True,
        ),
        (
            lambda s: s.APIError("boom", http_status=500),
            "The payment service had a problem. Please try again.",
            "api_error",
            True,
        ),
        (
            lambda s: s.APIConnectionError("x"),
            "Payment service unreachable, nothing was changed. Please try again.",
            "unreachable",
            True,
        ),
        (
            lambda s: s.AuthenticationError(
                "Invalid API Key provided: sk_live_****", http_status=401
            ),
            "Payments are not configured correctly. Please contact support.",
            "authentication_error",
            False,
        ),
        (
            lambda s: s.InvalidRequestError(
                "No such customer: cus_1", "id", "resource_missing", http_status=404
            ),
            "This billing record was not found at the payment service.",
            "resource_missing",
            False,
        ),
    ],
)
def test_error_mapping(make: Any, message: str, code: str, retryable: bool) -> None:
    error = errors.user_message_for(make(sdk))
    assert (error.message, error.code, error.retryable) == (message, code, retryable)


# The launcher ---------------------------------------------------------------------------


def test_emulator_listens_on_loopback_only(emulator: Emulator) -> None:
    listening = [
        c
        for c in psutil.Process(emulator.process.pid).net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening, "the launcher listens on nothing"
    assert {(c.laddr.ip, c.laddr.port) for c in listening} == {("127.0.0.1", emulator.port)}

    others = [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    for address in others:
        with pytest.raises(OSError):
            socket.create_connection((address, emulator.port), timeout=2).close()


def test_store_is_persisted_to_the_given_path_only(
    tmp_path: Path, settings_for: SettingsFor, run_emulator: Any
) -> None:
    shared = Path("/tmp/localstripe.pickle")
    shared_before = shared.stat().st_mtime_ns if shared.exists() else None
    store = tmp_path / "state" / "localstripe.pickle"

    with run_emulator("--store", str(store)) as running:
        client = StripeClient(settings_for(running.port, tmp_path))
        customer_id = new_customer(client)
    assert store.exists()
    assert stat.S_IMODE(store.stat().st_mode) == 0o600

    with run_emulator("--store", str(store)) as restarted:
        client = StripeClient(settings_for(restarted.port, tmp_path))
        assert client.customer_exists(customer_id)
        assert client.default_card(customer_id) is not None

    with run_emulator("--in-memory") as empty:
        assert not StripeClient(settings_for(empty.port, tmp_path)).customer_exists(customer_id)

    shared_after = shared.stat().st_mtime_ns if shared.exists() else None
    assert shared_after == shared_before, "wrote the machine-wide /tmp/localstripe.pickle"
    assert not os.path.exists(str(store) + ".tmp")


def test_register_test_webhook(client: StripeClient, emulator: Emulator) -> None:
    client.register_test_webhook("http://127.0.0.1:9/hook", "whsec_test", "it-test")
    with pytest.raises(GatewayError):  # localstripe answers 400 to a bad url
        client.register_test_webhook("http://", "", "it-test")


def test_register_test_webhook_is_test_mode_only(
    tmp_path: Path, settings_for: SettingsFor, closed_port: int
) -> None:
    live = settings_for(
        closed_port,
        tmp_path,
        stripe_secret_key="sk_live_x",
        stripe_publishable_key="pk_live_x",
        stripe_webhook_secret="whsec_x",
    )
    with pytest.raises(RuntimeError):
        StripeClient(live).register_test_webhook("https://example.test/hook", "whsec_x")


# Current API shapes (real Stripe 2025+), which localstripe never sends ------------------


def test_reads_the_current_api_shapes() -> None:
    item = {
        "id": "si_1",
        "quantity": 12,
        "current_period_start": 1_767_225_600,
        "current_period_end": 1_769_904_000,
        "price": {
            "id": "unlimited-month-800-usd",
            "unit_amount": 800,
            "currency": "usd",
            "recurring": {"interval": "month", "usage_type": "licensed"},
        },
    }
    sub = parsing.subscription_from(
        {
            "id": "sub_1",
            "customer": "cus_1",
            "status": "active",
            "items": {"data": [item]},
            "cancel_at_period_end": True,
            "cancel_at": 1_769_904_000,
        }
    )
    assert (sub.price_id, sub.interval, sub.quantity, sub.unit_amount, sub.currency) == (
        "unlimited-month-800-usd",
        "month",
        12,
        800,
        "usd",
    )
    assert sub.current_period_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert sub.current_period_end == sub.cancel_at == datetime(2026, 2, 1, tzinfo=UTC)

    invoice = parsing.invoice_from(
        {
            "id": "in_1",
            "number": "ACME-0001",
            "created": 1_767_225_600,
            "status": "paid",
            "currency": "usd",
            "subtotal": 1600,
            "total": 1760,
            "amount_paid": 1760,
            "amount_due": 1760,
            "total_taxes": [{"amount": 160}],
            "period_start": 1_767_225_600,
            "period_end": 1_767_225_600,
            "lines": {
                "data": [
                    {
                        "id": "il_1",
                        "amount": 1600,
                        "quantity": 2,
                        "description": "Remaining time",
                        "period": {"start": 1_767_225_600, "end": 1_769_904_000},
                        "parent": {
                            "type": "subscription_item_details",
                            "subscription_item_details": {"proration": True},
                        },
                        "pricing": {"type": "price_details", "unit_amount_decimal": "800"},
                    },
                ]
            },
        }
    )
    assert (invoice.number, invoice.tax, invoice.total) == ("ACME-0001", 160, 1760)
    assert (invoice.period_start, invoice.period_end) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    )
    (line,) = invoice.lines
    assert (line.quantity, line.unit_amount, line.amount, line.proration) == (2, 800, 1600, True)
