"""Reduce Licenses and Switch to Monthly at the next renewal, through the real-Stripe code path
on the emulator: a subscription schedule's second phase, applied when the period renews."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from billing_app.db import session_scope
from billing_app.errors import ErrorCode
from billing_app.i18n import use_locale
from billing_app.models import AuditLog
from billing_app.services import activity, seats, webhooks
from billing_app.services.billing_actions import BillingError, BillingService
from billing_app.services.summary import PageSummary, build_summary
from billing_app.settings import TEST_MODE_SECRET_KEY
from billing_app.stripe.client import StripeClient
from tests.integration.flows import ACTOR, account, subscribed_account

HEADERS = {"Authorization": f"Bearer {TEST_MODE_SECRET_KEY}"}


def form() -> str:
    return uuid.uuid4().hex


def activate_users(account_id: int, count: int) -> None:
    domain = account(account_id).admin_email.split("@")[1]
    with session_scope() as session:
        for n in range(count):
            seats.activate(session, account_id, f"user{n}@{domain}", actor=ACTOR)


def renew(emulator: Any, service: BillingService, account_id: int) -> dict[str, Any]:
    """The period ends: the emulator renews the subscription as Stripe does, the page re-syncs
    (what the webhook does); the renewal invoice is returned."""
    subscription_id = account(account_id).stripe_subscription_id
    response = httpx.post(
        f"{emulator.base}/_config/subscriptions/{subscription_id}/renew", timeout=10
    )
    response.raise_for_status()
    service.resync(account_id, actor=webhooks.ACTOR)
    invoice_id = response.json()["latest_invoice"]
    invoice = httpx.get(f"{emulator.base}/v1/invoices/{invoice_id}", headers=HEADERS, timeout=10)
    return dict(invoice.json())


def summary(account_id: int) -> PageSummary:
    with session_scope() as session:
        return build_summary(session, account(account_id))


def audit_actions(account_id: int) -> list[tuple[str, str, str]]:
    with session_scope() as session:
        rows = session.exec(
            select(AuditLog).where(AuditLog.account_id == account_id).order_by(col(AuditLog.id))
        )
        return [(row.action, row.actor, row.outcome) for row in rows]


def test_reduce_below_the_users_holding_licenses_is_refused(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    activate_users(account_id, 6)  # and the admin's own seat is not counted unless activated
    with pytest.raises(BillingError, match="Remove 1 user in User Management first") as refused:
        service.reduce_licenses(account_id, "5", form=form(), actor=ACTOR)
    assert refused.value.code == ErrorCode.LICENSES_IN_USE
    stored = account(account_id)
    assert stored.scheduled_licenses is None and stored.stripe_schedule_id is None
    subscription = service.gateway.retrieve_subscription(str(stored.stripe_subscription_id))
    assert subscription.schedule_id is None and subscription.quantity == 10


@pytest.mark.parametrize(
    ("typed", "message", "code"),
    [
        ("abc", "whole number", ErrorCode.INVALID_LICENSE_COUNT),
        ("0", "whole number", ErrorCode.INVALID_LICENSE_COUNT),
        ("-3", "whole number", ErrorCode.INVALID_LICENSE_COUNT),
        ("8.5", "whole number", ErrorCode.INVALID_LICENSE_COUNT),
        ("10", "fewer licenses than the 10", ErrorCode.NOT_FEWER_LICENSES),
        ("12", "fewer licenses than the 10", ErrorCode.NOT_FEWER_LICENSES),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(service, emulator, typed, message, code):
    account_id = subscribed_account(service, emulator, licenses=10)
    before = audit_actions(account_id)
    with pytest.raises(BillingError, match=message) as refused:
        service.reduce_licenses(account_id, typed, form=form(), actor=ACTOR)
    assert refused.value.code == code
    stored = account(account_id)
    assert stored.scheduled_licenses is None and stored.licenses_purchased == 10
    assert (
        service.gateway.retrieve_subscription(str(stored.stripe_subscription_id)).schedule_id
        is None
    )
    assert audit_actions(account_id) == before


def test_reduce_is_scheduled_and_the_renewal_charges_the_new_count(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    activate_users(account_id, 3)
    result = service.reduce_licenses(account_id, "8", form=form(), actor=ACTOR)
    assert "you will have 8 licenses" in result.message

    stored = account(account_id)
    assert (stored.licenses_purchased, stored.scheduled_licenses) == (10, 8)
    assert stored.next_invoice_amount_cents == 8 * 800
    renews = summary(account_id).renews_with
    assert renews.startswith("Renews on ") and renews.endswith(" with 8 licenses")
    subscription = service.gateway.retrieve_subscription(str(stored.stripe_subscription_id))
    assert subscription.quantity == 10  # nothing changes before the renewal
    assert subscription.scheduled is not None
    assert subscription.scheduled.starts_at == subscription.current_period_end
    assert subscription.scheduled.quantity == 8

    invoice = renew(emulator, service, account_id)
    lines = invoice["lines"]["data"]
    assert invoice["status"] == "paid" and invoice["amount_paid"] == 8 * 800
    assert [line["quantity"] for line in lines] == [8]
    assert not any(line.get("proration") for line in lines)  # no credit for the dropped two
    stored = account(account_id)
    assert (stored.licenses_purchased, stored.scheduled_licenses) == (8, None)
    assert stored.stripe_schedule_id is None and summary(account_id).renews_with == ""
    # Every step with its actor: the admin scheduled it, Stripe applied it at the renewal.
    steps = audit_actions(account_id)
    assert ("billing.reduce_licenses", ACTOR, "ok") in steps
    assert steps[-1] == ("stripe.subscription_changed", webhooks.ACTOR, "ok")

    # As on Stripe the schedule stays attached through its last phase; a later reduction reuses it.
    renewed = service.gateway.retrieve_subscription(str(stored.stripe_subscription_id))
    assert renewed.schedule_id is not None and renewed.scheduled is None
    service.reduce_licenses(account_id, "5", form=form(), actor=ACTOR)
    assert account(account_id).scheduled_licenses == 5
    assert renew(emulator, service, account_id)["amount_paid"] == 5 * 800
    assert account(account_id).licenses_purchased == 5


def test_keep_current_licenses_undoes_the_reduction(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    service.reduce_licenses(account_id, "7", form=form(), actor=ACTOR)
    schedule_id = account(account_id).stripe_schedule_id
    assert schedule_id

    service.keep_current_licenses(account_id, form=form(), actor=ACTOR)
    stored = account(account_id)
    assert stored.scheduled_licenses is None and stored.next_invoice_amount_cents == 10 * 800
    schedule = httpx.get(
        f"{emulator.base}/v1/subscription_schedules/{schedule_id}", headers=HEADERS, timeout=10
    ).json()
    assert schedule["status"] == "released"
    with pytest.raises(BillingError, match="No change of licenses is scheduled") as refused:
        service.keep_current_licenses(account_id, form=form(), actor=ACTOR)
    assert refused.value.code == ErrorCode.NOTHING_SCHEDULED

    invoice = renew(emulator, service, account_id)
    assert invoice["amount_paid"] == 10 * 800
    assert account(account_id).licenses_purchased == 10
    assert [a for a, who, _ in audit_actions(account_id) if who == ACTOR][-2:] == [
        "billing.reduce_licenses",
        "billing.keep_licenses",
    ]


def test_licenses_bought_while_a_reduction_is_scheduled_are_kept_at_the_renewal(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    service.reduce_licenses(account_id, "8", form=form(), actor=ACTOR)
    preview = service.preview_additional_licenses(account_id, "2")
    assert preview.charged_now_cents > 0
    service.add_licenses(
        account_id, "2", expected_licenses=10, proration_date=preview.proration_date, actor=ACTOR
    )
    stored = account(account_id)
    assert (stored.licenses_purchased, stored.scheduled_licenses) == (12, 10)
    assert summary(account_id).renews_with.endswith(" with 10 licenses")

    invoice = renew(emulator, service, account_id)
    assert invoice["amount_paid"] == 10 * 800
    assert account(account_id).licenses_purchased == 10


def test_switch_to_monthly_is_scheduled_and_applied_at_the_renewal(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=4, interval="year")
    with pytest.raises(BillingError, match="already billed monthly") as refused:
        service.switch_to_monthly(
            subscribed_account(service, emulator, licenses=2), form=form(), actor=ACTOR
        )
    assert refused.value.code == ErrorCode.ALREADY_MONTHLY
    result = service.switch_to_monthly(account_id, form=form(), actor=ACTOR)
    assert "switches to monthly billing on" in result.message
    stored = account(account_id)
    assert (stored.billing_interval, stored.scheduled_interval) == ("year", "month")
    assert stored.next_invoice_amount_cents == 4 * 800
    assert summary(account_id).switches_to_monthly.startswith("Switches to monthly on ")
    # A reduction on top keeps the switch.
    service.reduce_licenses(account_id, "3", form=form(), actor=ACTOR)
    assert (account(account_id).scheduled_interval, account(account_id).scheduled_licenses) == (
        "month",
        3,
    )

    invoice = renew(emulator, service, account_id)
    assert invoice["amount_paid"] == 3 * 800
    line = invoice["lines"]["data"][0]
    assert line["period"]["end"] - line["period"]["start"] < 32 * 86400  # a month
    stored = account(account_id)
    assert (stored.billing_interval, stored.licenses_purchased) == ("month", 3)
    assert summary(account_id).switches_to_monthly == ""
    assert ("billing.switch_monthly", ACTOR, "ok") in audit_actions(account_id)


def test_keep_yearly_billing_undoes_the_switch_and_keeps_a_reduction(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=5, interval="year")
    service.switch_to_monthly(account_id, form=form(), actor=ACTOR)
    service.reduce_licenses(account_id, "4", form=form(), actor=ACTOR)
    service.keep_yearly_billing(account_id, form=form(), actor=ACTOR)
    stored = account(account_id)
    assert (stored.scheduled_interval, stored.scheduled_licenses) == ("year", 4)
    assert summary(account_id).switches_to_monthly == ""
    assert ("billing.keep_yearly", ACTOR, "ok") in audit_actions(account_id)


def test_cancelling_drops_the_scheduled_change_and_convert_to_yearly_waits(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=10)
    service.reduce_licenses(account_id, "9", form=form(), actor=ACTOR)
    with pytest.raises(BillingError, match="Undo it first") as refused:
        service.preview_yearly(account_id)
    assert refused.value.code == ErrorCode.CHANGE_SCHEDULED
    service.cancel(
        account_id, reason="Too expensive", additional_features="", form=form(), actor=ACTOR
    )
    stored = account(account_id)
    assert stored.cancel_at is not None and stored.scheduled_licenses is None
    with pytest.raises(BillingError, match="set to cancel") as refused:
        service.reduce_licenses(account_id, "8", form=form(), actor=ACTOR)
    assert refused.value.code == ErrorCode.ALREADY_CANCELLING


def test_the_emulator_schedule_follows_stripe(service, emulator):
    """The Subscription Schedules rules the flows rely on: one schedule per subscription, the
    current phase's start kept, no direct cancellation while scheduled, release once."""
    account_id = subscribed_account(service, emulator, licenses=3)
    subscription_id = str(account(account_id).stripe_subscription_id)
    base = f"{emulator.base}/v1/subscription_schedules"

    def post(url: str, **data: Any) -> httpx.Response:
        return httpx.post(url, data=data, headers=HEADERS, timeout=10)

    schedule = post(base, from_subscription=subscription_id).json()
    assert schedule["status"] == "active" and schedule["end_behavior"] == "release"
    phase = schedule["phases"][0]
    assert schedule["current_phase"] == {
        "start_date": phase["start_date"],
        "end_date": phase["end_date"],
    }
    assert post(base, from_subscription=subscription_id).status_code == 400  # one at a time
    moved = post(
        f"{base}/{schedule['id']}",
        **{
            "phases[0][start_date]": str(phase["start_date"] + 60),
            "phases[0][items][0][price]": phase["items"][0]["price"],
            "phases[0][items][0][quantity]": "3",
        },
    )
    assert moved.status_code == 400 and "start date" in moved.json()["error"]["message"]
    refused = post(
        f"{emulator.base}/v1/subscriptions/{subscription_id}", cancel_at_period_end="true"
    )
    assert refused.status_code == 400
    assert "managed by the subscription schedule" in refused.json()["error"]["message"]

    released = post(f"{base}/{schedule['id']}/release").json()
    assert released["status"] == "released" and released["released_subscription"] == subscription_id
    assert post(f"{base}/{schedule['id']}/release").status_code == 400
    assert service.gateway.retrieve_subscription(subscription_id).schedule_id is None


def test_a_scheduled_change_survives_a_restart_of_the_emulator(
    tmp_path, settings_for, run_emulator, app_database
):
    store = tmp_path / "localstripe.pickle"
    with run_emulator("--store", str(store)) as running:
        settings = settings_for(running.port, tmp_path)
        before = BillingService(StripeClient(settings), settings)
        account_id = subscribed_account(before, running, licenses=4)
        before.reduce_licenses(account_id, "2", form=form(), actor=ACTOR)
    with run_emulator("--store", str(store)) as restarted:
        settings = settings_for(restarted.port, tmp_path)
        after = BillingService(StripeClient(settings), settings)
        after.resync(account_id)
        assert account(account_id).scheduled_licenses == 2
        assert renew(restarted, after, account_id)["amount_paid"] == 2 * 800
        assert account(account_id).licenses_purchased == 2


def test_the_renewal_changes_in_german(service, emulator):
    """Refusals, confirmations, the summary's lines and the Activity tab in the event's language
    (German dates, German plurals)."""
    account_id = subscribed_account(service, emulator, licenses=10, interval="year")
    activate_users(account_id, 4)
    german_date = r"\d{2}\.\d{2}\.\d{4}"
    with use_locale("de"):
        with pytest.raises(BillingError, match="Entfernen Sie zuerst 1 Benutzer in der"):
            service.reduce_licenses(account_id, "3", form=form(), actor=ACTOR)
        with pytest.raises(BillingError, match="weniger Lizenzen als die 10, die Sie"):
            service.reduce_licenses(account_id, "10", form=form(), actor=ACTOR)
        reduced = service.reduce_licenses(account_id, "6", form=form(), actor=ACTOR)
        assert re.fullmatch(
            rf"Ab Ihrer Verlängerung am {german_date} haben Sie 6 Lizenzen\.", reduced.message
        )
        switched = service.switch_to_monthly(account_id, form=form(), actor=ACTOR)
        assert re.fullmatch(
            rf"Ihr Abonnement wechselt am {german_date} zur monatlichen Abrechnung\.",
            switched.message,
        )
        shown = summary(account_id)
        assert re.fullmatch(rf"Verlängert sich am {german_date} mit 6 Lizenzen", shown.renews_with)
        assert re.fullmatch(
            rf"Wechselt am {german_date} zur monatlichen Abrechnung", shown.switches_to_monthly
        )
        assert (
            service.keep_yearly_billing(account_id, form=form(), actor=ACTOR).message
            == "Ihr Abonnement wird weiterhin jährlich abgerechnet."
        )
        with pytest.raises(BillingError, match="kein Wechsel zur monatlichen Abrechnung geplant"):
            service.keep_yearly_billing(account_id, form=form(), actor=ACTOR)
        with session_scope() as session:
            rows = activity.activity_page(session, account_id).rows
        shown_rows = [row.what for row in rows]
    assert "Lizenzen ab der nächsten Verlängerung: 6" in shown_rows
    assert "Monatliche Abrechnung zur Verlängerung geplant" in shown_rows
    assert "Geplanter Wechsel zur monatlichen Abrechnung rückgängig gemacht" in shown_rows
