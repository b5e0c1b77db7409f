"""The reconcile pass's comparison of the local rows (and seats) with Stripe's answer."""

from dataclasses import replace

from billing_app.plans import Plan
from billing_app.services.audit import AuditAction
from billing_app.services.billing import BillingChange, BillingFacts, stripe_changes
from billing_app.stripe.snapshots import BillingDetails

LOCAL = BillingFacts(
    plan=Plan.UNLIMITED,
    licenses=5,
    interval="month",
    cancel_at=None,
    unpaid_invoice_id=None,
    unpaid_amount_cents=None,
    unpaid_requires_action=False,
    card_brand="visa",
    card_last4="4242",
    currency="usd",
    users=3,
    details=None,
)


def test_in_step_means_no_change():
    assert stripe_changes(LOCAL, LOCAL) == []


def test_billing_details_changed_at_stripe_are_reported():
    berlin = BillingDetails(
        name="Acme GmbH", email="billing@acme.test", city="Berlin", country="DE"
    )
    assert stripe_changes(LOCAL, replace(LOCAL, details=berlin)) == [
        BillingChange(AuditAction.BILLING_DETAILS, True, {})
    ]
    moved = replace(berlin, city="Hamburg")
    assert stripe_changes(replace(LOCAL, details=berlin), replace(LOCAL, details=moved)) == [
        BillingChange(AuditAction.BILLING_DETAILS, True, {})
    ]


def test_a_repaired_count_says_what_it_was():
    assert stripe_changes(LOCAL, replace(LOCAL, licenses=4)) == [
        BillingChange(
            AuditAction.SUBSCRIPTION_CHANGED,
            True,
            {"licenses": 4, "interval": "month", "previous_licenses": 5},
        )
    ]


def test_fewer_licenses_than_users_is_reported_once():
    lowered = replace(LOCAL, licenses=2)
    assert stripe_changes(LOCAL, lowered)[-1] == BillingChange(
        AuditAction.USERS_EXCEED_LICENSES, True, {"users": 3, "licenses": 2}
    )
    # Still over (lowered again): the licenses change, the finding is not repeated.
    assert [change.action for change in stripe_changes(lowered, replace(lowered, licenses=1))] == [
        AuditAction.SUBSCRIPTION_CHANGED
    ]


def test_a_free_account_has_no_licenses_to_exceed():
    ended = replace(LOCAL, plan=Plan.FREE, licenses=0)
    assert [change.action for change in stripe_changes(LOCAL, ended)] == [
        AuditAction.SUBSCRIPTION_ENDED
    ]
