"""The money flows (BillingService) through the real-Stripe code path, on the extended emulator
and the test database: atomic charges, 3-D Secure, resumed retries, preview == charge."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import select

from billing_app.db import session_scope
from billing_app.errors import MSG_BUSY, ErrorCode, UserError
from billing_app.models import Account, AuditLog, BillingAction, CancellationFeedback, StripeEvent
from billing_app.services.activity import activity_page
from billing_app.services.billing_actions import MSG_STALE_PAGE, BillingService, StalePage
from billing_app.services.webhooks import handle_delivery
from billing_app.stripe.client import StripeClient
from billing_app.stripe.errors import MSG_SERVICE_ERROR, MSG_UNREACHABLE
from tests.integration.flows import (
    ACTOR,
    CHARGE_FAILS,
    SCA,
    DroppingProxy,
    account,
    actions,
    card_form,
    card_payment_method,
    charge_a_renewal,
    confirm_card,
    new_account,
    subscribed_account,
    through_the_page,
    use_card,
)


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


def stripe_get(emulator, path: str) -> dict[str, Any]:
    return emulator.get(path).json()


def open_or_draft_invoices(emulator, customer_id: str) -> list[str]:
    invoices = stripe_get(emulator, f"/v1/invoices?customer={customer_id}&limit=100")["data"]
    return [inv["id"] for inv in invoices if inv["status"] in ("open", "draft")]


def subscription_at_stripe(emulator, account_id: int) -> dict[str, Any]:
    return stripe_get(emulator, f"/v1/subscriptions/{account(account_id).stripe_subscription_id}")


def item_of(subscription: dict[str, Any]) -> tuple[str, int]:
    item = subscription["items"]["data"][0]
    price = item.get("price") or item["plan"]
    return price["id"], item["quantity"]


def add(service, account_id: int, count, *, expected: int, **kwargs):
    preview = service.preview_additional_licenses(account_id, count)
    return service.add_licenses(
        account_id,
        count,
        expected_licenses=expected,
        proration_date=preview.proration_date,
        actor=ACTOR,
        **kwargs,
    )


def audit_entries(account_id: int, action: str) -> list[AuditLog]:
    with session_scope() as session:
        return list(
            session.exec(
                select(AuditLog).where(AuditLog.account_id == account_id, AuditLog.action == action)
            )
        )


# Purchase Unlimited Version -------------------------------------------------------------


def test_free_account_buys_the_unlimited_version(service, emulator):
    account_id = new_account()
    secret = card_form(service, emulator, account_id)
    result = service.purchase_unlimited(
        account_id, licenses="3", interval="year", setup_secret=secret, actor=ACTOR
    )
    # The first payment is confirmed on the page (Stripe.js), so 3-D Secure can happen there.
    assert result.awaits_customer and result.payment_method_id
    assert account(account_id).plan == "free"
    result = through_the_page(
        emulator,
        lambda **kw: service.purchase_unlimited(
            account_id, licenses="3", interval="year", setup_secret=secret, actor=ACTOR, **kw
        ),
    )
    assert "3 licenses" in result.message
    stored = account(account_id)
    assert (stored.plan, stored.billing_interval, stored.licenses_purchased) == (
        "unlimited",
        "year",
        3,
    )
    assert stored.card_last4 == "4242"
    assert stored.next_invoice_amount_cents == 3 * 8000
    subscription = service.gateway.retrieve_subscription(str(stored.stripe_subscription_id))
    assert (subscription.quantity, subscription.interval, subscription.status) == (
        3,
        "year",
        "active",
    )
    page = service.gateway.invoice_page(str(stored.stripe_customer_id))
    assert [(inv.status, inv.total) for inv in page.invoices] == [("paid", 24000)]
    assert [e.outcome for e in audit_entries(account_id, "billing.purchase_unlimited")] == ["ok"]


def test_upgrade_with_a_3d_secure_card(service, emulator):
    account_id = new_account()
    secret = card_form(service, emulator, account_id, SCA)
    through_the_page(
        emulator,
        lambda **kw: service.purchase_unlimited(
            account_id, licenses=2, interval="month", setup_secret=secret, actor=ACTOR, **kw
        ),
    )
    stored = account(account_id)
    assert (stored.plan, stored.licenses_purchased) == ("unlimited", 2)


def test_failed_authentication_of_the_first_payment_leaves_no_subscription(service, emulator):
    account_id = new_account()
    secret = card_form(service, emulator, account_id, SCA)
    with pytest.raises(UserError, match="Nothing was charged"):
        through_the_page(
            emulator,
            lambda **kw: service.purchase_unlimited(
                account_id, licenses=2, interval="month", setup_secret=secret, actor=ACTOR, **kw
            ),
            authenticate=False,
        )
    stored = account(account_id)
    assert stored.plan == "free"
    subscriptions = stripe_get(
        emulator, f"/v1/subscriptions?customer={stored.stripe_customer_id}&status=all"
    )
    assert [s["status"] for s in subscriptions["data"]] in (
        [],
        ["canceled"],
        ["incomplete_expired"],
    )
    assert open_or_draft_invoices(emulator, str(stored.stripe_customer_id)) == []
    # A new card form (a new SetupIntent) may try again.
    retry = card_form(service, emulator, account_id)
    through_the_page(
        emulator,
        lambda **kw: service.purchase_unlimited(
            account_id, licenses=2, interval="month", setup_secret=retry, actor=ACTOR, **kw
        ),
    )
    assert account(account_id).plan == "unlimited"


def test_declined_card_buys_nothing(service, emulator):
    account_id = new_account()
    secret = service.start_card_setup(account_id)
    confirmation = confirm_card(emulator, secret, "4000000000000002")
    assert confirmation.get("error"), confirmation
    with pytest.raises(UserError, match="not confirmed"):
        service.purchase_unlimited(
            account_id, licenses=2, interval="month", setup_secret=secret, actor=ACTOR
        )
    stored = account(account_id)
    assert (stored.plan, stored.stripe_subscription_id, stored.card_last4) == ("free", None, None)


def test_first_payment_declined_leaves_nothing(service, emulator):
    account_id = new_account()
    secret = card_form(service, emulator, account_id, CHARGE_FAILS)
    with pytest.raises(UserError, match="declined"):
        through_the_page(
            emulator,
            lambda **kw: service.purchase_unlimited(
                account_id, licenses=2, interval="month", setup_secret=secret, actor=ACTOR, **kw
            ),
        )
    stored = account(account_id)
    assert stored.plan == "free"
    live = stripe_get(emulator, f"/v1/subscriptions?customer={stored.stripe_customer_id}")["data"]
    assert live == []
    assert open_or_draft_invoices(emulator, str(stored.stripe_customer_id)) == []


def test_upgrade_retried_after_a_lost_answer_makes_one_subscription(
    service, settings_for, settings, emulator
):
    """The create reached Stripe but its answer was lost; the retry finds and finishes it."""
    proxy = DroppingProxy(
        emulator.base, lambda method, path: method == "POST" and path == "/v1/subscriptions"
    )
    try:
        flaky_settings = settings_for(proxy.port, settings.billing_data_dir)
        flaky = BillingService(StripeClient(flaky_settings), flaky_settings)
        account_id = new_account()
        secret = card_form(service, emulator, account_id)
        with pytest.raises(UserError):
            flaky.purchase_unlimited(
                account_id, licenses=4, interval="month", setup_secret=secret, actor=ACTOR
            )
        assert proxy.dropped  # Stripe made it, we never heard
    finally:
        proxy.close()
    through_the_page(
        emulator,
        lambda **kw: service.purchase_unlimited(
            account_id, licenses=4, interval="month", setup_secret=secret, actor=ACTOR, **kw
        ),
    )
    stored = account(account_id)
    subscriptions = stripe_get(
        emulator, f"/v1/subscriptions?customer={stored.stripe_customer_id}&status=all"
    )
    assert [(s["status"], s["items"]["data"][0]["quantity"]) for s in subscriptions["data"]] == [
        ("active", 4)
    ]
    assert stored.licenses_purchased == 4


@pytest.mark.parametrize("licenses", [0, -1, 1001, "abc", "", "2.5", None])
def test_purchase_with_a_bad_license_count_changes_nothing(service, licenses):
    account_id = new_account()
    with pytest.raises(UserError, match="whole number"):
        service.purchase_unlimited(
            account_id,
            licenses=licenses,
            interval="month",
            setup_secret="seti_x_secret_y",
            actor=ACTOR,
        )
    assert account(account_id).plan == "free" and actions(account_id) == []


# Purchase Additional License -------------------------------------------------------------


def test_add_licenses_charges_exactly_the_previewed_amount(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    preview = service.preview_additional_licenses(account_id, 5)
    assert preview.recurring_cents == 15 * 800
    assert 0 < preview.charged_now_cents <= 5 * 800
    result = service.add_licenses(
        account_id, "5", expected_licenses=10, proration_date=preview.proration_date, actor=ACTOR
    )
    stored = account(account_id)
    assert stored.licenses_purchased == 15
    subscription = service.gateway.retrieve_subscription(str(stored.stripe_subscription_id))
    assert subscription.quantity == 15
    change = service.gateway.retrieve_invoice(str(subscription.latest_invoice_id))
    assert (change.status, change.amount_paid, change.amount_due) == (
        "paid",
        preview.charged_now_cents,
        preview.charged_now_cents,
    )
    assert all(line.proration for line in change.lines)
    assert preview.charged_now in result.message


def test_same_action_twice_charges_once(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    preview = service.preview_additional_licenses(account_id, 2)
    first = service.add_licenses(
        account_id, 2, expected_licenses=10, proration_date=preview.proration_date, actor=ACTOR
    )
    again = service.add_licenses(
        account_id, 2, expected_licenses=10, proration_date=preview.proration_date, actor=ACTOR
    )
    assert again.already_done and again.message == first.message
    stored = account(account_id)
    assert service.gateway.retrieve_subscription(str(stored.stripe_subscription_id)).quantity == 12
    assert len(service.gateway.invoice_page(str(stored.stripe_customer_id)).invoices) == 2


def test_second_tab_with_a_stale_page_is_refused(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    other_tab = service.preview_additional_licenses(account_id, 1)
    time.sleep(1.1)  # the first tab previews and buys a moment later
    add(service, account_id, 1, expected=10)
    with pytest.raises(StalePage, match=MSG_STALE_PAGE):
        service.add_licenses(
            account_id,
            1,
            expected_licenses=10,
            proration_date=other_tab.proration_date,
            actor=ACTOR,
        )
    assert account(account_id).licenses_purchased == 11


def test_one_pending_action_per_account(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    with session_scope() as session:
        session.add(
            BillingAction(
                account_id=account_id,
                kind="add_licenses",
                idempotency_key=uuid.uuid4().hex,
                actor=ACTOR,
            )
        )
    with pytest.raises(UserError, match=MSG_BUSY) as refused:
        add(service, account_id, 1, expected=10)
    assert refused.value.code == ErrorCode.BUSY
    assert account(account_id).licenses_purchased == 10


@pytest.mark.parametrize("count", [0, -3, 1001, "ten", "", " ", "1e3", "4.0"])
def test_bad_license_counts_are_refused(service, emulator, count):
    account_id = subscribed_account(service, emulator, licenses=10)
    with pytest.raises(UserError, match="whole number of licenses from 1 to 1000") as refused:
        service.add_licenses(
            account_id, count, expected_licenses=10, proration_date=int(time.time()), actor=ACTOR
        )
    assert refused.value.code == ErrorCode.INVALID_LICENSE_COUNT
    with pytest.raises(UserError):
        service.preview_additional_licenses(account_id, count)
    assert account(account_id).licenses_purchased == 10
    assert [a.kind for a in actions(account_id)] == ["purchase_unlimited"]


@pytest.mark.parametrize("proration_date", [None, "soon", 0, 10**12, int(time.time()) - 7200])
def test_a_missing_or_old_preview_instant_is_refused(service, emulator, proration_date):
    account_id = subscribed_account(service, emulator, licenses=10)
    with pytest.raises(StalePage, match="price shown has expired"):
        service.add_licenses(
            account_id, 1, expected_licenses=10, proration_date=proration_date, actor=ACTOR
        )
    assert item_of(subscription_at_stripe(emulator, account_id))[1] == 10


# Atomic charges: a declined card changes nothing ---------------------------------------------


@pytest.mark.parametrize("action", ["add", "yearly"])
def test_a_declined_charge_changes_nothing_anywhere(service, emulator, action):
    account_id = subscribed_account(service, emulator, licenses=10)
    use_card(service, account_id, card_payment_method(emulator.base, CHARGE_FAILS))
    before = subscription_at_stripe(emulator, account_id)
    with pytest.raises(UserError, match="declined. Nothing was changed"):
        if action == "add":
            add(service, account_id, 5, expected=10)
        else:
            service.convert_to_yearly(
                account_id,
                proration_date=service.preview_yearly(account_id).proration_date,
                actor=ACTOR,
            )
    after = subscription_at_stripe(emulator, account_id)
    assert item_of(after) == item_of(before)
    assert after.get("pending_update") is None
    stored = account(account_id)
    assert open_or_draft_invoices(emulator, str(stored.stripe_customer_id)) == []
    assert (stored.licenses_purchased, stored.billing_interval) == (10, "month")
    kind = "add_licenses" if action == "add" else "convert_yearly"
    assert [e.outcome for e in audit_entries(account_id, f"billing.{kind}")] == ["error"]


def test_changed_quantity_after_a_failure_is_a_new_action(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    use_card(service, account_id, card_payment_method(emulator.base, CHARGE_FAILS))
    with pytest.raises(UserError, match="declined"):
        add(service, account_id, 2, expected=10)
    use_card(service, account_id, card_payment_method(emulator.base, "4242424242424242"))
    add(service, account_id, 3, expected=10)
    tried = [(a.kind, json.loads(a.params)["licenses"], a.status) for a in actions(account_id)[1:]]
    assert tried == [("add_licenses", 2, "failed"), ("add_licenses", 3, "succeeded")]
    keys = [a.idempotency_key for a in actions(account_id)[1:]]
    assert len(set(keys)) == 2
    assert account(account_id).licenses_purchased == 13


def test_the_same_action_retried_after_a_decline_is_a_new_attempt_at_stripe(service, emulator):
    """Stripe would replay the refusal for the same idempotency key: the retry gets new keys."""
    account_id = subscribed_account(service, emulator, licenses=10)
    use_card(service, account_id, card_payment_method(emulator.base, CHARGE_FAILS))
    preview = service.preview_additional_licenses(account_id, 2)

    def attempt():
        return service.add_licenses(
            account_id, 2, expected_licenses=10, proration_date=preview.proration_date, actor=ACTOR
        )

    with pytest.raises(UserError, match="declined"):
        attempt()
    use_card(service, account_id, card_payment_method(emulator.base, "4242424242424242"))
    attempt()
    (row,) = actions(account_id)[1:]
    assert (row.status, json.loads(row.progress)["attempt"]) == ("succeeded", 2)
    assert account(account_id).licenses_purchased == 12


# 3-D Secure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["add", "yearly"])
def test_a_3d_secure_charge_waits_for_the_customer_then_completes(service, emulator, action):
    account_id = subscribed_account(service, emulator, licenses=4)
    use_card(service, account_id, card_payment_method(emulator.base, SCA))
    if action == "add":
        preview = service.preview_additional_licenses(account_id, 2)

        def run(**kw):
            return service.add_licenses(
                account_id,
                2,
                expected_licenses=4,
                proration_date=preview.proration_date,
                actor=ACTOR,
                **kw,
            )
    else:
        preview = service.preview_yearly(account_id)

        def run(**kw):
            return service.convert_to_yearly(
                account_id, proration_date=preview.proration_date, actor=ACTOR, **kw
            )

    waiting = run()
    assert waiting.awaits_customer
    # Nothing is granted while the bank waits.
    assert (account(account_id).licenses_purchased, account(account_id).billing_interval) == (
        4,
        "month",
    )
    assert item_of(subscription_at_stripe(emulator, account_id))[1] == 4
    through_the_page(emulator, run)
    stored = account(account_id)
    subscription = service.gateway.retrieve_subscription(str(stored.stripe_subscription_id))
    if action == "add":
        assert (stored.licenses_purchased, subscription.quantity) == (6, 6)
    else:
        assert (stored.billing_interval, subscription.interval) == ("year", "year")
    paid = service.gateway.retrieve_invoice(str(subscription.latest_invoice_id))
    assert (paid.status, paid.amount_paid) == ("paid", preview.charged_now_cents)


def test_a_failed_authentication_grants_nothing(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=4)
    use_card(service, account_id, card_payment_method(emulator.base, SCA))
    preview = service.preview_additional_licenses(account_id, 2)
    with pytest.raises(UserError, match="Nothing was changed"):
        through_the_page(
            emulator,
            lambda **kw: service.add_licenses(
                account_id,
                2,
                expected_licenses=4,
                proration_date=preview.proration_date,
                actor=ACTOR,
                **kw,
            ),
            authenticate=False,
        )
    stored = account(account_id)
    assert stored.licenses_purchased == 4
    at_stripe = subscription_at_stripe(emulator, account_id)
    assert item_of(at_stripe)[1] == 4 and at_stripe.get("pending_update") is None
    assert open_or_draft_invoices(emulator, str(stored.stripe_customer_id)) == []


# Resuming instead of repeating --------------------------------------------------------------------


def test_a_change_whose_answer_was_lost_is_finished_by_the_retry_without_a_second_change(
    service, settings_for, settings, emulator
):
    account_id = subscribed_account(service, emulator, licenses=10)
    subscription_path = f"/v1/subscriptions/{account(account_id).stripe_subscription_id}"
    proxy = DroppingProxy(
        emulator.base, lambda method, path: method == "POST" and path == subscription_path
    )
    preview = service.preview_additional_licenses(account_id, 3)
    try:
        flaky_settings = settings_for(proxy.port, settings.billing_data_dir)
        flaky = BillingService(StripeClient(flaky_settings), flaky_settings)
        with pytest.raises(UserError):
            flaky.add_licenses(
                account_id,
                3,
                expected_licenses=10,
                proration_date=preview.proration_date,
                actor=ACTOR,
            )
        assert proxy.dropped
    finally:
        proxy.close()
    invoices_before = stripe_get(
        emulator, f"/v1/invoices?customer={account(account_id).stripe_customer_id}"
    )
    result = service.add_licenses(
        account_id, 3, expected_licenses=10, proration_date=preview.proration_date, actor=ACTOR
    )
    assert "you now have 13" in result.message
    assert item_of(subscription_at_stripe(emulator, account_id))[1] == 13
    invoices_after = stripe_get(
        emulator, f"/v1/invoices?customer={account(account_id).stripe_customer_id}"
    )
    assert len(invoices_after["data"]) == len(invoices_before["data"])  # no second charge
    assert account(account_id).licenses_purchased == 13


# Convert to Yearly Billing ---------------------------------------------------------------


def test_convert_to_yearly_charges_exactly_the_previewed_amount(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=4)
    preview = service.preview_yearly(account_id)
    assert preview.recurring_cents == 4 * 8000 and preview.interval == "year"
    service.convert_to_yearly(account_id, proration_date=preview.proration_date, actor=ACTOR)
    stored = account(account_id)
    assert (
        stored.billing_interval,
        stored.licenses_purchased,
        stored.next_invoice_amount_cents,
    ) == ("year", 4, 32000)
    subscription = service.gateway.retrieve_subscription(str(stored.stripe_subscription_id))
    assert subscription.interval == "year"
    switch_invoice = service.gateway.retrieve_invoice(str(subscription.latest_invoice_id))
    assert (switch_invoice.status, switch_invoice.amount_paid) == (
        "paid",
        preview.charged_now_cents,
    )
    # One charge for the switch: nothing else was invoiced after it.
    assert len(service.gateway.invoice_page(str(stored.stripe_customer_id)).invoices) == 2
    with pytest.raises(UserError, match="already billed yearly"):
        service.preview_yearly(account_id)


# Cancel / resume ---------------------------------------------------------------------------


def form() -> str:
    return uuid.uuid4().hex


@pytest.mark.parametrize("reason", ["", "   ", "x" * 10_000])
def test_cancel_needs_a_reasonable_reason(service, emulator, reason):
    account_id = subscribed_account(service, emulator, licenses=1)
    with pytest.raises(UserError):
        service.cancel(account_id, reason=reason, additional_features="", form=form(), actor=ACTOR)
    assert account(account_id).cancel_at is None
    with session_scope() as session:
        assert (
            session.exec(
                select(CancellationFeedback).where(CancellationFeedback.account_id == account_id)
            ).all()
            == []
        )


def test_cancel_at_period_end_then_resume(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    result = service.cancel(
        account_id,
        reason="Too expensive",
        additional_features="Dark mode",
        form=form(),
        actor=ACTOR,
    )
    stored = account(account_id)
    assert stored.cancel_at is not None and stored.cancel_at == stored.current_period_end
    assert "will end on" in result.message
    at_stripe = subscription_at_stripe(emulator, account_id)
    assert at_stripe["cancel_at_period_end"]
    assert (
        at_stripe["cancellation_details"]["comment"]
        == "Reason: Too expensive\nAdditional features: Dark mode"
    )
    with session_scope() as session:
        feedback = session.exec(
            select(CancellationFeedback).where(CancellationFeedback.account_id == account_id)
        ).one()
        assert (feedback.reason, feedback.additional_features) == ("Too expensive", "Dark mode")
    service.resume(account_id, form=form(), actor=ACTOR)
    assert account(account_id).cancel_at is None
    assert not service.gateway.retrieve_subscription(
        str(stored.stripe_subscription_id)
    ).cancel_at_period_end
    # Cancelling again later is a new action (a new form), not a replay of the first.
    service.cancel(
        account_id, reason="Still too expensive", additional_features="", form=form(), actor=ACTOR
    )
    assert account(account_id).cancel_at is not None


def test_cancel_feedback_is_kept_when_stripe_is_down(service, offline_service, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    cancel_form = form()
    with pytest.raises(UserError, match=MSG_UNREACHABLE):
        offline_service.cancel(
            account_id,
            reason="Closing the company",
            additional_features="",
            form=cancel_form,
            actor=ACTOR,
        )
    assert account(account_id).cancel_at is None
    with session_scope() as session:
        assert session.exec(
            select(CancellationFeedback.reason).where(CancellationFeedback.account_id == account_id)
        ).all() == ["Closing the company"]
    # Once Stripe is back, the same action goes through.
    service.cancel(
        account_id,
        reason="Closing the company",
        additional_features="",
        form=cancel_form,
        actor=ACTOR,
    )
    assert account(account_id).cancel_at is not None


# Stripe unreachable during each action ---------------------------------------------------------


@pytest.mark.parametrize("action", ["add", "yearly", "resume_after_cancel", "card"])
def test_stripe_down_changes_nothing_and_the_retry_works(
    service, offline_service, emulator, action
):
    account_id = subscribed_account(service, emulator, licenses=3)
    if action == "resume_after_cancel":
        service.cancel(account_id, reason="r", additional_features="", form=form(), actor=ACTOR)
    before = account(account_id)
    when = int(time.time())
    resume_form = form()
    runs = {
        "add": lambda svc: svc.add_licenses(
            account_id, 1, expected_licenses=3, proration_date=when, actor=ACTOR
        ),
        "yearly": lambda svc: svc.convert_to_yearly(account_id, proration_date=when, actor=ACTOR),
        "resume_after_cancel": lambda svc: svc.resume(account_id, form=resume_form, actor=ACTOR),
        "card": lambda svc: svc.start_card_setup(account_id),
    }
    with pytest.raises(UserError, match=MSG_UNREACHABLE):
        runs[action](offline_service)
    after = account(account_id)
    assert (
        after.licenses_purchased,
        after.billing_interval,
        after.cancel_at,
        after.card_last4,
    ) == (before.licenses_purchased, before.billing_interval, before.cancel_at, before.card_last4)
    runs[action](service)


@pytest.mark.parametrize("action", ["add", "yearly", "cancel"])
def test_stripe_answering_500_changes_nothing(service, erroring_service, emulator, action):
    account_id = subscribed_account(service, emulator, licenses=3)
    before = account(account_id)
    when = int(time.time())
    runs = {
        "add": lambda: erroring_service.add_licenses(
            account_id, 1, expected_licenses=3, proration_date=when, actor=ACTOR
        ),
        "yearly": lambda: erroring_service.convert_to_yearly(
            account_id, proration_date=when, actor=ACTOR
        ),
        "cancel": lambda: erroring_service.cancel(
            account_id, reason="r", additional_features="", form=form(), actor=ACTOR
        ),
    }
    with pytest.raises(UserError, match=MSG_SERVICE_ERROR):
        runs[action]()
    after = account(account_id)
    assert (after.licenses_purchased, after.billing_interval, after.cancel_at) == (
        before.licenses_purchased,
        before.billing_interval,
        before.cancel_at,
    )
    # Failed before or after the intent was recorded (the yearly Price is looked up first): never
    # pending.
    assert all(a.status == "failed" for a in actions(account_id) if a.kind != "purchase_unlimited")


# Failed renewals and card changes ---------------------------------------------------------------


def open_renewal_invoice(emulator, account_id: int) -> str:
    """An invoice the subscription could not charge (what a failed renewal leaves open)."""
    return charge_a_renewal(emulator.base, str(account(account_id).stripe_customer_id), 800)


def test_a_new_card_pays_the_open_invoices(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    use_card(service, account_id, card_payment_method(emulator.base, CHARGE_FAILS))
    unpaid = open_renewal_invoice(emulator, account_id)
    service.resync(account_id)
    stored = account(account_id)
    assert stored.unpaid_invoice_id == unpaid and stored.unpaid_amount_cents == 800
    secret = card_form(service, emulator, account_id)
    saved = service.save_card(account_id, secret, actor=ACTOR)
    assert "is paid" in saved.message
    stored = account(account_id)
    assert (stored.unpaid_invoice_id, stored.card_last4) == (None, "4242")
    assert service.gateway.retrieve_invoice(unpaid).status == "paid"
    subscription = subscription_at_stripe(emulator, account_id)
    assert (
        subscription["default_payment_method"]
        == service.gateway.default_card(str(stored.stripe_customer_id)).payment_method_id
    )


def test_declined_new_card_keeps_the_old_one(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=1)
    secret = service.start_card_setup(account_id)
    assert confirm_card(emulator, secret, "4000000000000002").get("error")
    with pytest.raises(UserError, match="not confirmed"):
        service.save_card(account_id, secret, actor=ACTOR)
    assert account(account_id).card_last4 == "4242"
    card = service.gateway.default_card(str(account(account_id).stripe_customer_id))
    assert card is not None and card.last4 == "4242"


# Webhooks ----------------------------------------------------------------------------------------


def signed(settings, event: dict, secret: str | None = None) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    timestamp = int(time.time())
    digest = hmac.new(
        (secret or settings.webhook_secret).encode(),
        f"{timestamp}.".encode() + payload,
        hashlib.sha256,
    ).hexdigest()
    return payload, f"t={timestamp},v1={digest}"


def subscription_event(
    event_id: str, stored: Account, event_type: str = "customer.subscription.updated"
) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "data": {
            "object": {
                "id": stored.stripe_subscription_id,
                "object": "subscription",
                "customer": stored.stripe_customer_id,
            }
        },
    }


def stored_event(event_id: str) -> StripeEvent | None:
    with session_scope() as session:
        return session.get(StripeEvent, event_id)


def change_quantity_at_stripe(service, stored: Account, quantity: int) -> None:
    """A change made at Stripe behind our back (e.g. by support in the Dashboard)."""
    subscription = service.gateway.retrieve_subscription(str(stored.stripe_subscription_id))
    service.gateway.change_subscription(
        subscription,
        price_id=subscription.price_id,
        quantity=quantity,
        proration_date=int(time.time()),
        idempotency_key=uuid.uuid4().hex,
    )


def test_webhook_with_a_bad_signature_writes_nothing(service, settings, emulator):
    stored = account(subscribed_account(service, emulator, licenses=1))
    event_id = "evt_" + uuid.uuid4().hex
    payload, signature = signed(
        settings, subscription_event(event_id, stored), secret="whsec_wrong"
    )
    assert handle_delivery(service, payload, signature).status == 400
    assert handle_delivery(service, payload, "").status == 400
    assert stored_event(event_id) is None


def test_webhook_resyncs_from_stripe_once_per_event(service, settings, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    change_quantity_at_stripe(service, stored, 7)
    event_id = "evt_" + uuid.uuid4().hex
    payload, signature = signed(settings, subscription_event(event_id, stored))
    result = handle_delivery(service, payload, signature)
    assert (result.status, result.outcome) == (200, "applied")
    assert account(account_id).licenses_purchased == 7
    assert stored_event(event_id).outcome == "applied"
    assert handle_delivery(service, payload, signature).outcome == "replay"


def test_a_burst_of_events_for_one_account_is_applied_with_one_read_more(
    service, settings, emulator, monkeypatch
):
    """Stripe sends events in bursts: those arriving while a re-read runs share the next one."""
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    change_quantity_at_stripe(service, stored, 5)
    burst = [subscription_event("evt_" + uuid.uuid4().hex, stored) for _ in range(12)]
    resync, reads = service.resync, []

    def first_read_held_until_the_burst_arrived(*args, **kwargs):
        reads.append(args)
        if len(reads) == 1:
            ids = [event["id"] for event in burst]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with session_scope() as session:
                    claimed = session.exec(select(StripeEvent).where(StripeEvent.id.in_(ids))).all()
                if len(claimed) == len(ids):
                    break
                time.sleep(0.02)
            time.sleep(0.5)  # the claimed ones look their account up and queue
        return resync(*args, **kwargs)

    monkeypatch.setattr(service, "resync", first_read_held_until_the_burst_arrived)
    with ThreadPoolExecutor(max_workers=len(burst)) as pool:
        results = list(pool.map(lambda e: handle_delivery(service, *signed(settings, e)), burst))
    assert {(r.status, r.outcome) for r in results} == {(200, "applied")}
    assert len(reads) <= 3  # one per event before: 12
    assert account(account_id).licenses_purchased == 5


def stripe_rows(account_id: int) -> list[tuple[str, str]]:
    """The Activity tab's rows done by Stripe, oldest first: (what, outcome)."""
    with session_scope() as session:
        rows = activity_page(session, account_id).rows
    return [(row.what, row.outcome) for row in reversed(rows) if row.who == "Stripe"]


def deliver(service, settings, event: dict) -> None:
    assert handle_delivery(service, *signed(settings, event)).outcome == "applied"


def invoice_event(event_type: str, stored: Account, invoice_id: str) -> dict:
    invoice = {"id": invoice_id, "object": "invoice", "customer": stored.stripe_customer_id}
    return {"id": "evt_" + uuid.uuid4().hex, "type": event_type, "data": {"object": invoice}}


def test_changes_a_webhook_reports_show_in_the_activity_tab_as_done_by_stripe(
    service, settings, emulator
):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    change_quantity_at_stripe(service, stored, 7)
    deliver(service, settings, subscription_event("evt_" + uuid.uuid4().hex, stored))
    # A renewal the card declines, then paid at Stripe with another card.
    use_card(service, account_id, card_payment_method(emulator.base, CHARGE_FAILS))
    unpaid = open_renewal_invoice(emulator, account_id)
    deliver(service, settings, invoice_event("invoice.payment_failed", stored, unpaid))
    use_card(service, account_id, card_payment_method(emulator.base, "4000056655665556"))
    assert service.gateway.pay_invoice(unpaid, idempotency_key=uuid.uuid4().hex).paid
    deliver(service, settings, invoice_event("invoice.paid", stored, unpaid))
    service.gateway._v1.subscriptions.cancel(str(stored.stripe_subscription_id))
    deliver(
        service,
        settings,
        subscription_event("evt_" + uuid.uuid4().hex, stored, "customer.subscription.deleted"),
    )
    assert stripe_rows(account_id) == [
        ("Subscription changed at Stripe: 7 licenses, billed monthly (was 2)", "Done"),
        ("Card changed to Visa ending 0341", "Done"),
        ("Payment of $8.00", "Failed"),
        ("Card changed to Visa ending 5556", "Done"),
        ("Payment of $8.00", "Done"),
        ("Subscription ended: back to the free version", "Done"),
    ]


def test_a_webhook_after_a_page_action_adds_no_entry(service, settings, emulator):
    """The page's action already stored and audited what Stripe then reports."""
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    service.cancel(account_id, reason="r", additional_features="", form=form(), actor=ACTOR)
    deliver(service, settings, subscription_event("evt_" + uuid.uuid4().hex, stored))
    assert stripe_rows(account_id) == []


def test_out_of_order_events_end_in_stripes_current_state(service, settings, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    service.cancel(account_id, reason="r", additional_features="", form=form(), actor=ACTOR)
    service.gateway.set_cancel_at_period_end(
        str(stored.stripe_subscription_id), False, idempotency_key=uuid.uuid4().hex
    )
    # The "resumed" event arrives first, then the older "cancelled" one: Stripe says resumed.
    for suffix in ("resumed", "cancelled"):
        payload, signature = signed(
            settings, subscription_event(f"evt_{suffix}_{uuid.uuid4().hex}", stored)
        )
        assert handle_delivery(service, payload, signature).outcome == "applied"
    assert account(account_id).cancel_at is None


def test_deleted_subscription_event_returns_the_account_to_free(service, settings, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    service.gateway._v1.subscriptions.cancel(str(stored.stripe_subscription_id))
    payload, signature = signed(
        settings,
        subscription_event("evt_" + uuid.uuid4().hex, stored, "customer.subscription.deleted"),
    )
    assert handle_delivery(service, payload, signature).outcome == "applied"
    after = account(account_id)
    assert (after.plan, after.licenses_purchased) == ("free", 0)


def test_webhook_for_an_unknown_customer_is_ignored(service, settings):
    event = {
        "id": "evt_" + uuid.uuid4().hex,
        "type": "invoice.paid",
        "data": {"object": {"id": "in_x", "object": "invoice", "customer": "cus_nobody"}},
    }
    payload, signature = signed(settings, event)
    assert handle_delivery(service, payload, signature).outcome == "ignored"


def test_webhook_retried_after_stripe_was_down(service, offline_service, settings, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    payload, signature = signed(settings, subscription_event("evt_" + uuid.uuid4().hex, stored))
    assert handle_delivery(offline_service, payload, signature).status == 503
    assert handle_delivery(service, payload, signature).outcome == "applied"


def test_an_event_left_processing_or_failing_is_processed_on_the_next_delivery(
    service, settings, emulator, monkeypatch
):
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    event_id = "evt_" + uuid.uuid4().hex
    payload, signature = signed(
        settings, subscription_event(event_id, stored, "invoice.payment_action_required")
    )

    def crash(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(service, "resync", crash)
    failed = handle_delivery(service, payload, signature)
    assert (failed.status, stored_event(event_id).outcome) == (500, "error")
    monkeypatch.undo()
    with session_scope() as session:  # as a crash mid-processing would leave it
        event = session.get(StripeEvent, event_id)
        event.outcome = "processing"
        session.add(event)
    assert handle_delivery(service, payload, signature).outcome == "applied"


def test_an_older_read_is_never_stored_over_a_newer_one(service, emulator, monkeypatch):
    """Two re-syncs race: the one that read Stripe first must not store its answer last."""
    account_id = subscribed_account(service, emulator, licenses=2)
    stored = account(account_id)
    real_retrieve = service.gateway.retrieve_subscription
    slow_read_started, newer_stored = threading.Event(), threading.Event()

    def slow_retrieve(subscription_id):
        snapshot = real_retrieve(subscription_id)
        if threading.current_thread().name == "older":
            slow_read_started.set()
            newer_stored.wait(10)
        return snapshot

    monkeypatch.setattr(service.gateway, "retrieve_subscription", slow_retrieve)
    older = threading.Thread(target=service.resync, args=(account_id,), name="older")
    older.start()
    slow_read_started.wait(10)
    subscription = real_retrieve(str(stored.stripe_subscription_id))
    service.gateway.change_subscription(
        subscription,
        price_id=subscription.price_id,
        quantity=5,
        proration_date=int(time.time()),
        idempotency_key=uuid.uuid4().hex,
    )
    service.resync(account_id)
    newer_stored.set()
    older.join(10)
    assert account(account_id).licenses_purchased == 5
