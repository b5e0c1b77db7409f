"""The Activity tab's rows: labels, actors, paging, and nothing secret shown."""

import dataclasses
import json
from datetime import datetime

import pytest
from sqlmodel import Session

from billing_app.models import AuditLog
from billing_app.services import audit, webhooks
from billing_app.services.activity import PAGE_SIZE, activity_page, actor_label, display_row
from billing_app.services.audit import AuditAction

AT = datetime(2026, 3, 4, 9, 5)


def _entry(
    action: str, outcome: str = audit.AuditOutcome.OK, actor: str = "ann@acme.test", **detail
):
    return AuditLog(
        id=7,
        at=AT,
        account_id=1,
        actor=actor,
        action=action,
        outcome=outcome,
        detail=json.dumps(detail),
    )


def test_every_action_keeps_its_stored_value_and_has_a_label():
    assert AuditAction.LICENSE_RELEASE == "license.release"
    assert AuditAction("billing.cancel") is AuditAction.CANCEL
    assert all(action.label and action.label[0].isupper() for action in AuditAction)


@pytest.mark.parametrize(
    ("actor", "shown"),
    [
        ("ann@acme.test", "ann@acme.test"),
        ("billing-admin", "Operator"),
        ("billing-admin seed-demo", "Operator"),
        ("stripe-webhook", "Stripe"),
        (webhooks.ACTOR, "Stripe"),
        ("system", "System"),
        ("connector (license API)", "Connector"),
    ],
)
def test_actors(actor, shown):
    assert actor_label(actor) == shown


@pytest.mark.parametrize(
    ("entry", "what", "outcome"),
    [
        (_entry("license.release", email="bob@acme.test"), "Removed bob@acme.test", "Done"),
        (
            _entry("billing.add_licenses", licenses=2, charged_cents=1600, currency="usd"),
            "Added 2 licenses — $16.00 charged",
            "Done",
        ),
        (
            _entry("billing.change_card", card_brand="visa", card_last4="4444"),
            "Card changed to Visa ending 4444",
            "Done",
        ),
        (_entry("domains.update", added=["a.test"], removed=[]), "Domains updated", "Done"),
        (
            _entry("page.sign_in", audit.AuditOutcome.ERROR),
            "Sign-in failed",
            "Failed: wrong password",
        ),
        (
            _entry("page.sign_in", audit.AuditOutcome.ERROR, reason="locked"),
            "Sign-in failed",
            "Failed: too many wrong passwords; try again later",
        ),
        (
            _entry("billing.cancel", form="abcdefgh12"),
            "Subscription cancelled at period end — reason saved",
            "Done",
        ),
        (
            _entry(
                "billing.add_licenses", audit.AuditOutcome.ERROR, licenses=1, message="Declined."
            ),
            "Added 1 license",
            "Failed: Declined.",
        ),
        (
            _entry("stripe.subscription_changed", licenses=7, interval="year"),
            "Subscription changed at Stripe: 7 licenses, billed yearly",
            "Done",
        ),
        (
            _entry(
                "stripe.payment_failed", audit.AuditOutcome.ERROR, amount_cents=800, currency="usd"
            ),
            "Payment of $8.00",
            "Failed",
        ),
        (
            _entry("stripe.payment_action_required", amount_cents=800, currency="usd"),
            "Bank asks to confirm a payment of $8.00",
            "Done",
        ),
        (_entry("stripe.payment_succeeded"), "Open invoice paid", "Done"),
        (
            _entry(
                "stripe.subscription_changed", licenses=3, interval="month", previous_licenses=7
            ),
            "Subscription changed at Stripe: 3 licenses, billed monthly (was 7)",
            "Done",
        ),
        (
            _entry("seats.users_exceed_licenses", users=3, licenses=1),
            (
                "3 users are active but only 1 license is purchased: new users are refused until "
                "resolved"
            ),
            "Done",
        ),
        (
            _entry(
                "license.activate",
                audit.AuditOutcome.ERROR,
                email="d@acme.test",
                result="users_exceed_licenses",
            ),
            "Activated d@acme.test",
            "Failed: more users than licenses",
        ),
        (_entry("something.new"), "Other change", "Done"),
    ],
)
def test_rows_in_plain_words(entry, what, outcome):
    row = display_row(entry)
    assert (row.what, row.outcome) == (what, outcome)
    assert row.at == "2026-03-04T09:05:00+00:00"  # the browser writes it in its time zone
    assert row.who == "ann@acme.test"


def test_secrets_never_shown():
    secrets = {
        "setup_intent": "seti_SECRET1",
        "subscription": "sub_SECRET2",
        "customer": "cus_SECRET3",
        "invoice": "in_SECRET4",
        "client_secret": "pi_x_secret_SECRET5",
        "api_key": "SECRET6",
        "password": "SECRET7",
        "card_number": "4242424242424242",
    }
    rows = [
        display_row(_entry(action.value, outcome, **secrets))
        for action in AuditAction
        for outcome in (audit.AuditOutcome.OK, audit.AuditOutcome.ERROR)
    ]
    # A card's last 4 digits are shown only when they are exactly 4 digits.
    rows.append(display_row(_entry("billing.change_card", card_last4="4242424242424242")))
    shown = json.dumps([dataclasses.asdict(row) for row in rows])
    assert "SECRET" not in shown
    assert "4242424242424242" not in shown


def test_pages_of_25_newest_first(engine, add_unlimited_account):
    with Session(engine) as session:
        account = add_unlimited_account(session, "acme", licenses=5)
        other = add_unlimited_account(session, "globex", licenses=5)
        for n in range(PAGE_SIZE + 5):
            audit.record(
                session,
                action=AuditAction.LICENSE_RELEASE,
                actor="ann@acme.test",
                account_id=account.id,
                email=f"user{n}@acme.test",
            )
        audit.record(
            session,
            action=AuditAction.LICENSE_RELEASE,
            actor="x@globex.test",
            account_id=other.id,
            email="user@globex.test",
        )
        session.commit()

        first = activity_page(session, account.id)
        assert len(first.rows) == PAGE_SIZE and first.has_more
        assert first.rows[0].what == f"Removed user{PAGE_SIZE + 4}@acme.test"
        second = activity_page(session, account.id, before=first.next_cursor)
        # The last 5 and the account's creation; never the other account's entries.
        assert [row.what for row in second.rows] == [
            *(f"Removed user{n}@acme.test" for n in (4, 3, 2, 1, 0)),
            "Account created",
        ]
        assert not second.has_more and second.next_cursor is None
