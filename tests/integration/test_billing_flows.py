"""The money flows (BillingService) against a real localstripe and the test database."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlmodel import select

from billing_app.db import session_scope
from billing_app.models import Account, AuditLog, BillingAction, CancellationFeedback, StripeEvent
from billing_app.runner import migrate
from billing_app.services.accounts import create_account
from billing_app.services.billing_actions import (
    MSG_BUSY,
    MSG_STALE_PAGE,
    BillingError,
    BillingService,
)
from billing_app.services.webhooks import handle_delivery
from billing_app.settings import TEST_MODE_PUBLISHABLE_KEY, get_settings
from billing_app.stripe_gateway import MSG_SERVICE_ERROR, MSG_UNREACHABLE, StripeClient

ACTOR = "admin@test.example"


@pytest.fixture(scope="module", autouse=True)
def database():
    migrate(get_settings().database_url)


@pytest.fixture(scope="module")
def service(settings) -> BillingService:
    return BillingService(StripeClient(settings), settings)


@pytest.fixture(scope="module")
def offline_service(settings_for, closed_port, settings) -> BillingService:
    """The same service with Stripe unreachable."""
    offline = settings_for(closed_port, settings.billing_data_dir)
    return BillingService(StripeClient(offline), offline)


@pytest.fixture(scope="module")
def erroring_service(settings_for, settings):
    """The same service against a server that answers every request with HTTP 500."""

    class Always500(BaseHTTPRequestHandler):
        def _fail(self):
            body = b'{"error": {"type": "api_error", "message": "boom"}}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _fail

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Always500)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    broken = settings_for(server.server_address[1], settings.billing_data_dir)
    yield BillingService(StripeClient(broken), broken)
    server.shutdown()


def key() -> str:
    return uuid.uuid4().hex


def confirm_card(emulator, client_secret: str, number: str = "4242424242424242") -> dict:
    """What Stripe.js does in the browser: confirm the SetupIntent with the card."""
    intent_id = client_secret.split("_secret_")[0]
    response = httpx.post(f"{emulator.base}/v1/setup_intents/{intent_id}/confirm", json={
        "key": TEST_MODE_PUBLISHABLE_KEY, "use_stripe_sdk": True, "client_secret": client_secret,
        "payment_method_data": {"type": "card", "card": {
            "number": number, "exp_month": "12", "exp_year": "2031", "cvc": "123"}},
    }, timeout=10)
    return response.json()


def new_account() -> int:
    slug = "t-" + uuid.uuid4().hex[:10]
    with session_scope() as session:
        return create_account(session, slug=slug, name=f"Test {slug}", admin_email=f"admin@{slug}.test",
                              actor=ACTOR).id


def account(account_id: int) -> Account:
    with session_scope() as session:
        return session.get(Account, account_id)


def subscribed_account(service: BillingService, emulator, licenses: int = 10, interval: str = "month") -> int:
    account_id = new_account()
    secret = service.start_card_setup(account_id, key=key())
    assert confirm_card(emulator, secret)["status"] == "succeeded"
    service.purchase_unlimited(account_id, licenses=licenses, interval=interval, setup_secret=secret,
                               key=key(), actor=ACTOR)
    return account_id


def actions(account_id: int) -> list[BillingAction]:
    with session_scope() as session:
        return list(session.exec(select(BillingAction).where(BillingAction.account_id == account_id)))


# Purchase Unlimited Version -------------------------------------------------------------

def test_free_account_buys_the_unlimited_version(service, emulator):
    account_id = new_account()
    secret = service.start_card_setup(account_id, key=key())
    assert confirm_card(emulator, secret)["status"] == "succeeded"
    result = service.purchase_unlimited(account_id, licenses="3", interval="year", setup_secret=secret,
                                        key=key(), actor=ACTOR)
    assert "3 licenses" in result.message
    stored = account(account_id)
    assert (stored.plan, stored.billing_interval, stored.licenses_purchased) == ("unlimited", "year", 3)
    assert stored.card_last4 == "4242"
    assert stored.next_invoice_amount_cents == 3 * 8000
    subscription = service.gateway.retrieve_subscription(stored.stripe_subscription_id)
    assert (subscription.quantity, subscription.interval, subscription.status) == (3, "year", "active")
    invoices, _ = service.gateway.list_invoices(stored.stripe_customer_id)
    assert [(inv.status, inv.total) for inv in invoices] == [("paid", 24000)]
    with session_scope() as session:
        entry = session.exec(select(AuditLog).where(AuditLog.account_id == account_id,
                                                    AuditLog.action == "billing.purchase_unlimited")).one()
        assert entry.outcome == "ok"


def test_declined_card_buys_nothing(service, emulator):
    account_id = new_account()
    secret = service.start_card_setup(account_id, key=key())
    confirmation = confirm_card(emulator, secret, "4000000000000002")
    assert confirmation.get("error"), confirmation
    with pytest.raises(BillingError, match="not confirmed"):
        service.purchase_unlimited(account_id, licenses=2, interval="month", setup_secret=secret,
                                   key=key(), actor=ACTOR)
    stored = account(account_id)
    assert (stored.plan, stored.stripe_subscription_id, stored.card_last4) == ("free", None, None)


@pytest.mark.parametrize("licenses", [0, -1, 1001, "abc", "", "2.5", None])
def test_purchase_with_a_bad_license_count_changes_nothing(service, licenses):
    account_id = new_account()
    with pytest.raises(BillingError, match="whole number"):
        service.purchase_unlimited(account_id, licenses=licenses, interval="month", setup_secret="seti_x_secret_y",
                                   key=key(), actor=ACTOR)
    assert account(account_id).plan == "free" and actions(account_id) == []


# Purchase Additional License -------------------------------------------------------------

def test_add_licenses_charges_the_previewed_amount(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    preview = service.preview_additional_licenses(account_id, 5)
    assert preview.recurring_cents == 15 * 800
    result = service.add_licenses(account_id, "5", expected_licenses=10, key=key(), actor=ACTOR)
    stored = account(account_id)
    assert stored.licenses_purchased == 15
    assert service.gateway.retrieve_subscription(stored.stripe_subscription_id).quantity == 15
    invoices = service.gateway.list_invoices(stored.stripe_customer_id)[0]
    charged = [inv for inv in invoices if inv.lines and any(line.proration for line in inv.lines)]
    assert [(inv.status, inv.amount_paid) for inv in charged] == [("paid", preview.charged_now_cents)]
    assert preview.charged_now in result.message


def test_same_key_twice_charges_once(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    action_key = key()
    first = service.add_licenses(account_id, 2, expected_licenses=10, key=action_key, actor=ACTOR)
    again = service.add_licenses(account_id, 2, expected_licenses=10, key=action_key, actor=ACTOR)
    assert again.already_done and again.message == first.message
    stored = account(account_id)
    assert service.gateway.retrieve_subscription(stored.stripe_subscription_id).quantity == 12
    assert len(service.gateway.list_invoices(stored.stripe_customer_id)[0]) == 2


def test_second_tab_with_a_stale_page_is_refused(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    service.add_licenses(account_id, 1, expected_licenses=10, key=key(), actor=ACTOR)
    with pytest.raises(BillingError, match=MSG_STALE_PAGE):
        service.add_licenses(account_id, 1, expected_licenses=10, key=key(), actor=ACTOR)
    assert account(account_id).licenses_purchased == 11


def test_one_pending_action_per_account(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    with session_scope() as session:
        session.add(BillingAction(account_id=account_id, kind="add_licenses", idempotency_key=key(), actor=ACTOR))
    with pytest.raises(BillingError, match=MSG_BUSY):
        service.add_licenses(account_id, 1, expected_licenses=10, key=key(), actor=ACTOR)
    assert account(account_id).licenses_purchased == 10


@pytest.mark.parametrize("count", [0, -3, 1001, "ten", "", " ", "1e3", "4.0"])
def test_bad_license_counts_are_refused(service, emulator, count):
    account_id = subscribed_account(service, emulator, licenses=10)
    with pytest.raises(BillingError, match="whole number of licenses from 1 to 1000"):
        service.add_licenses(account_id, count, expected_licenses=10, key=key(), actor=ACTOR)
    with pytest.raises(BillingError):
        service.preview_additional_licenses(account_id, count)
    assert account(account_id).licenses_purchased == 10
    assert [a.kind for a in actions(account_id)] == ["purchase_unlimited"]


# Convert to Yearly Billing ---------------------------------------------------------------

def test_convert_to_yearly(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=4)
    preview = service.preview_yearly(account_id)
    assert preview.recurring_cents == 4 * 8000 and preview.interval == "year"
    service.convert_to_yearly(account_id, key=key(), actor=ACTOR)
    stored = account(account_id)
    assert (stored.billing_interval, stored.licenses_purchased, stored.next_invoice_amount_cents) == ("year", 4, 32000)
    subscription = service.gateway.retrieve_subscription(stored.stripe_subscription_id)
    assert subscription.interval == "year"
    switch_invoice = service.gateway.retrieve_invoice(subscription.latest_invoice_id)
    assert (switch_invoice.status, switch_invoice.amount_paid) == ("paid", preview.charged_now_cents)
    with pytest.raises(BillingError, match="already billed yearly"):
        service.convert_to_yearly(account_id, key=key(), actor=ACTOR)


# Cancel / resume ---------------------------------------------------------------------------

@pytest.mark.parametrize("reason", ["", "   ", "x" * 10_000])
def test_cancel_needs_a_reasonable_reason(service, emulator, reason):
    account_id = subscribed_account(service, emulator, licenses=1)
    with pytest.raises(BillingError):
        service.cancel(account_id, reason=reason, additional_features="", key=key(), actor=ACTOR)
    assert account(account_id).cancel_at is None
    with session_scope() as session:
        assert session.exec(select(CancellationFeedback).where(CancellationFeedback.account_id == account_id)).all() == []


def test_cancel_at_period_end_then_resume(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    result = service.cancel(account_id, reason="Too expensive", additional_features="Dark mode",
                            key=key(), actor=ACTOR)
    stored = account(account_id)
    assert stored.cancel_at is not None and stored.cancel_at == stored.current_period_end
    assert "will end on" in result.message
    assert service.gateway.retrieve_subscription(stored.stripe_subscription_id).cancel_at_period_end
    with session_scope() as session:
        feedback = session.exec(select(CancellationFeedback).where(CancellationFeedback.account_id == account_id)).one()
        assert (feedback.reason, feedback.additional_features) == ("Too expensive", "Dark mode")
    service.resume(account_id, key=key(), actor=ACTOR)
    assert account(account_id).cancel_at is None
    assert not service.gateway.retrieve_subscription(stored.stripe_subscription_id).cancel_at_period_end


def test_cancel_feedback_is_kept_when_stripe_is_down(service, offline_service, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    action_key = key()
    with pytest.raises(BillingError, match=MSG_UNREACHABLE):
        offline_service.cancel(account_id, reason="Closing the company", additional_features="",
                               key=action_key, actor=ACTOR)
    assert account(account_id).cancel_at is None
    with session_scope() as session:
        assert session.exec(select(CancellationFeedback.reason)
                            .where(CancellationFeedback.account_id == account_id)).all() == ["Closing the company"]
    # Once Stripe is back, the same action goes through.
    service.cancel(account_id, reason="Closing the company", additional_features="", key=action_key, actor=ACTOR)
    assert account(account_id).cancel_at is not None


# Stripe unreachable during each action ---------------------------------------------------------

@pytest.mark.parametrize("action", ["add", "yearly", "resume_after_cancel", "card"])
def test_stripe_down_changes_nothing_and_the_retry_works(service, offline_service, emulator, action):
    account_id = subscribed_account(service, emulator, licenses=3)
    if action == "resume_after_cancel":
        service.cancel(account_id, reason="r", additional_features="", key=key(), actor=ACTOR)
    before = account(account_id)
    runs = {
        "add": lambda svc, k: svc.add_licenses(account_id, 1, expected_licenses=3, key=k, actor=ACTOR),
        "yearly": lambda svc, k: svc.convert_to_yearly(account_id, key=k, actor=ACTOR),
        "resume_after_cancel": lambda svc, k: svc.resume(account_id, key=k, actor=ACTOR),
        "card": lambda svc, k: svc.start_card_setup(account_id, key=k),
    }
    action_key = key()
    with pytest.raises(BillingError, match=MSG_UNREACHABLE):
        runs[action](offline_service, action_key)
    after = account(account_id)
    assert (after.licenses_purchased, after.billing_interval, after.cancel_at, after.card_last4) == (
        before.licenses_purchased, before.billing_interval, before.cancel_at, before.card_last4)
    runs[action](service, action_key)


@pytest.mark.parametrize("action", ["add", "yearly", "cancel"])
def test_stripe_answering_500_changes_nothing(service, erroring_service, emulator, action):
    account_id = subscribed_account(service, emulator, licenses=3)
    before = account(account_id)
    runs = {
        "add": lambda: erroring_service.add_licenses(account_id, 1, expected_licenses=3, key=key(), actor=ACTOR),
        "yearly": lambda: erroring_service.convert_to_yearly(account_id, key=key(), actor=ACTOR),
        "cancel": lambda: erroring_service.cancel(account_id, reason="r", additional_features="", key=key(),
                                                  actor=ACTOR),
    }
    with pytest.raises(BillingError, match=MSG_SERVICE_ERROR):
        runs[action]()
    after = account(account_id)
    assert (after.licenses_purchased, after.billing_interval, after.cancel_at) == (
        before.licenses_purchased, before.billing_interval, before.cancel_at)
    assert [a.status for a in actions(account_id) if a.kind != "purchase_unlimited"] == ["failed"]


# Failed payments -----------------------------------------------------------------------------

def test_failed_payment_then_new_card_pays_the_open_invoice(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    stored = account(account_id)
    service.gateway.attach_default_card(stored.stripe_customer_id, "pm_card_chargeCustomerFail", idempotency_key=key())
    result = service.add_licenses(account_id, 5, expected_licenses=10, key=key(), actor=ACTOR)
    assert "failed" in result.message
    stored = account(account_id)
    assert stored.unpaid_invoice_id and stored.unpaid_amount_cents > 0
    unpaid = stored.unpaid_invoice_id
    secret = service.start_card_setup(account_id, key=key())
    assert confirm_card(emulator, secret)["status"] == "succeeded"
    saved = service.save_card(account_id, secret, key=key(), actor=ACTOR)
    assert "is paid" in saved.message
    stored = account(account_id)
    assert (stored.unpaid_invoice_id, stored.card_last4) == (None, "4242")
    assert service.gateway.retrieve_invoice(unpaid).status == "paid"


def test_declined_new_card_keeps_the_old_one(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=1)
    secret = service.start_card_setup(account_id, key=key())
    assert confirm_card(emulator, secret, "4000000000000002").get("error")
    with pytest.raises(BillingError, match="not confirmed"):
        service.save_card(account_id, secret, key=key(), actor=ACTOR)
    assert account(account_id).card_last4 == "4242"
    assert service.gateway.default_card(account(account_id).stripe_customer_id).last4 == "4242"


# Webhooks ----------------------------------------------------------------------------------------

def signed(settings, event: dict, secret: str | None = None) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    timestamp = int(time.time())
    digest = hmac.new((secret or settings.webhook_secret).encode(), f"{timestamp}.".encode() + payload,
                      hashlib.sha256).hexdigest()
    return payload, f"t={timestamp},v1={digest}"


def subscription_event(event_id: str, stored: Account, event_type: str = "customer.subscription.updated") -> dict:
    return {"id": event_id, "object": "event", "type": event_type, "data": {"object": {
        "id": stored.stripe_subscription_id, "object": "subscription", "customer": stored.stripe_customer_id}}}


def stored_event(event_id: str) -> StripeEvent | None:
    with session_scope() as session:
        return session.get(StripeEvent, event_id)


def test_webhook_with_a_bad_signature_writes_nothing(service, settings, emulator):
    stored = account(subscribed_account(service, emulator, licenses=1))
    event_id = "evt_" + uuid.uuid4().hex
    payload, signature = signed(settings, subscription_event(event_id, stored), secret="whsec_wrong")
    assert handle_delivery(service, payload, signature).status == 400
    assert handle_delivery(service, payload, "").status == 400
    assert stored_event(event_id) is None


def test_webhook_resyncs_from_stripe_once_per_event(service, settings, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    # A change made at Stripe behind our back (e.g. by support in the Dashboard).
    subscription = service.gateway.retrieve_subscription(stored.stripe_subscription_id)
    service.gateway.change_subscription(subscription, plan_id=subscription.plan_id, quantity=7, idempotency_key=key())
    event_id = "evt_" + uuid.uuid4().hex
    payload, signature = signed(settings, subscription_event(event_id, stored), )
    result = handle_delivery(service, payload, signature)
    assert (result.status, result.outcome) == (200, "applied")
    assert account(account_id).licenses_purchased == 7
    assert stored_event(event_id).outcome == "applied"
    assert handle_delivery(service, payload, signature).outcome == "replay"


def test_out_of_order_events_end_in_stripes_current_state(service, settings, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    service.cancel(account_id, reason="r", additional_features="", key=key(), actor=ACTOR)
    service.gateway.set_cancel_at_period_end(stored.stripe_subscription_id, False, idempotency_key=key())
    # The "resumed" event arrives first, then the older "cancelled" one: Stripe says resumed.
    for suffix in ("resumed", "cancelled"):
        payload, signature = signed(settings, subscription_event(f"evt_{suffix}_{uuid.uuid4().hex}", stored))
        assert handle_delivery(service, payload, signature).outcome == "applied"
    assert account(account_id).cancel_at is None


def test_deleted_subscription_event_returns_the_account_to_free(service, settings, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    service.gateway._v1.subscriptions.cancel(stored.stripe_subscription_id)
    payload, signature = signed(settings, subscription_event("evt_" + uuid.uuid4().hex, stored,
                                                             "customer.subscription.deleted"))
    assert handle_delivery(service, payload, signature).outcome == "applied"
    after = account(account_id)
    assert (after.plan, after.licenses_purchased) == ("free", 0)


def test_webhook_for_an_unknown_customer_is_ignored(service, settings):
    event = {"id": "evt_" + uuid.uuid4().hex, "type": "invoice.paid",
             "data": {"object": {"id": "in_x", "object": "invoice", "customer": "cus_nobody"}}}
    payload, signature = signed(settings, event)
    assert handle_delivery(service, payload, signature).outcome == "ignored"


def test_webhook_retried_after_stripe_was_down(service, offline_service, settings, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    payload, signature = signed(settings, subscription_event("evt_" + uuid.uuid4().hex, stored))
    assert handle_delivery(offline_service, payload, signature).status == 503
    assert handle_delivery(service, payload, signature).outcome == "applied"
