"""Keeping an account's local billing rows in step with what Stripe answered.

Every Stripe response that describes a subscription, a card or the customer's billing
details is applied here, so the page always shows Stripe's truth rather than what we
asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_app.models import (
    Account,
    utcnow,
)
from billing_app.plans import Plan
from billing_app.services.audit import AuditAction
from billing_app.services.billing_details import stored_details
from billing_app.services.seats import users_exceed_licenses
from billing_app.stripe.snapshots import (
    BillingDetails,
    CardSummary,
    InvoicePayment,
    ScheduledChange,
    SubscriptionSnapshot,
)

# Statuses in which the customer keeps the Unlimited Version (past_due: Stripe is still retrying).
# An `incomplete` subscription's first payment is not made yet: it grants nothing.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due"})


def apply_subscription(account: Account, subscription: SubscriptionSnapshot) -> None:
    account.stripe_subscription_id = subscription.id
    account.subscription_status = subscription.status
    account.updated_at = utcnow()
    if subscription.status not in LIVE_STATUSES:
        account.plan = Plan.FREE
        account.billing_interval = None
        account.licenses_purchased = 0
        account.current_period_end = None
        account.cancel_at = None
        account.next_invoice_amount_cents = None
        _apply_schedule(account, None)
        return
    account.plan = Plan.UNLIMITED
    account.billing_interval = subscription.interval
    account.licenses_purchased = subscription.quantity
    account.currency = subscription.currency
    account.current_period_end = subscription.current_period_end
    if subscription.cancel_at_period_end or subscription.cancel_at:
        account.cancel_at = subscription.cancel_at or subscription.current_period_end
        account.next_invoice_amount_cents = None
    else:
        account.cancel_at = None
        account.next_invoice_amount_cents = subscription.quantity * subscription.unit_amount
    _apply_schedule(account, subscription.scheduled)
    if subscription.scheduled is not None and account.cancel_at is None:
        # The renewal invoice bills the scheduled terms.
        account.next_invoice_amount_cents = (
            subscription.scheduled.quantity * subscription.scheduled.unit_amount
        )


def _apply_schedule(account: Account, scheduled: ScheduledChange | None) -> None:
    account.stripe_schedule_id = scheduled.schedule_id if scheduled else None
    account.scheduled_licenses = scheduled.quantity if scheduled else None
    account.scheduled_interval = scheduled.interval if scheduled else None
    account.scheduled_at = scheduled.starts_at if scheduled else None


def apply_card(account: Account, card: CardSummary | None) -> None:
    account.card_brand = card.brand if card else None
    account.card_last4 = card.last4 if card else None
    account.card_exp_month = card.exp_month if card else None
    account.card_exp_year = card.exp_year if card else None
    account.updated_at = utcnow()


def apply_payment_state(account: Account, unpaid: InvoicePayment | None) -> None:
    """Remember the unpaid invoice (the page asks for a new card, or to authenticate the
    payment when the bank asks for it), or forget it once paid."""
    if unpaid is not None and unpaid.invoice_status == "open" and unpaid.amount_due > 0:
        account.unpaid_invoice_id = unpaid.invoice_id
        account.unpaid_amount_cents = unpaid.amount_due - unpaid.amount_paid
        account.unpaid_requires_action = unpaid.needs_customer
    else:
        account.unpaid_invoice_id = None
        account.unpaid_amount_cents = None
        account.unpaid_requires_action = False
    account.updated_at = utcnow()


@dataclass(frozen=True)
class BillingFacts:
    """What the admin sees of an account's billing: compared before and after a Stripe event."""

    plan: str
    licenses: int
    interval: str | None
    cancel_at: datetime | None
    unpaid_invoice_id: str | None
    unpaid_amount_cents: int | None
    unpaid_requires_action: bool
    card_brand: str | None
    card_last4: str | None
    currency: str
    users: int  # activated users, compared with the licenses
    details: BillingDetails | None  # as the page shows them


def billing_facts(account: Account, users: int) -> BillingFacts:
    return BillingFacts(
        plan=account.plan,
        licenses=account.licenses_purchased,
        interval=account.billing_interval,
        cancel_at=account.cancel_at,
        unpaid_invoice_id=account.unpaid_invoice_id,
        unpaid_amount_cents=account.unpaid_amount_cents,
        unpaid_requires_action=account.unpaid_requires_action,
        card_brand=account.card_brand,
        card_last4=account.card_last4,
        currency=account.currency,
        users=users,
        details=stored_details(account),
    )


@dataclass(frozen=True)
class BillingChange:
    """One change made at Stripe (not through the page), as an audit entry."""

    action: AuditAction
    ok: bool
    detail: dict[str, Any]


def _subscription_changes(before: BillingFacts, after: BillingFacts) -> list[BillingChange]:
    if before.plan == Plan.UNLIMITED and after.plan != Plan.UNLIMITED:
        return [BillingChange(AuditAction.SUBSCRIPTION_ENDED, True, {})]
    if after.plan != Plan.UNLIMITED:
        return []
    changes = []
    if (before.plan, before.licenses, before.interval) != (
        after.plan,
        after.licenses,
        after.interval,
    ):
        detail: dict[str, Any] = {"licenses": after.licenses, "interval": after.interval}
        if before.plan == Plan.UNLIMITED and before.licenses != after.licenses:
            detail["previous_licenses"] = before.licenses
        changes.append(BillingChange(AuditAction.SUBSCRIPTION_CHANGED, True, detail))
    if before.cancel_at is None and after.cancel_at is not None:
        changes.append(BillingChange(AuditAction.CANCEL_SCHEDULED, True, {}))
    elif before.plan == Plan.UNLIMITED and before.cancel_at is not None and after.cancel_at is None:
        changes.append(BillingChange(AuditAction.RESUME, True, {}))
    return changes


def _seat_changes(before: BillingFacts, after: BillingFacts) -> list[BillingChange]:
    """Users newly exceeding the licenses: new activations are refused until the admin acts."""
    if not users_exceed_licenses(after.plan, after.users, after.licenses) or (
        users_exceed_licenses(before.plan, before.users, before.licenses)
    ):
        return []
    detail = {"users": after.users, "licenses": after.licenses}
    return [BillingChange(AuditAction.USERS_EXCEED_LICENSES, True, detail)]


def _payment_changes(
    before: BillingFacts, after: BillingFacts, paid_invoice_ids: frozenset[str]
) -> list[BillingChange]:
    changes = []
    if before.unpaid_invoice_id in paid_invoice_ids and before.unpaid_amount_cents:
        detail = {"amount_cents": before.unpaid_amount_cents, "currency": before.currency}
        changes.append(BillingChange(AuditAction.PAYMENT_SUCCEEDED, True, detail))
    if after.unpaid_invoice_id is not None and (
        (after.unpaid_invoice_id, after.unpaid_requires_action)
        != (before.unpaid_invoice_id, before.unpaid_requires_action)
    ):
        detail = {"amount_cents": after.unpaid_amount_cents, "currency": after.currency}
        if after.unpaid_requires_action:
            changes.append(BillingChange(AuditAction.PAYMENT_ACTION_REQUIRED, True, detail))
        else:
            changes.append(BillingChange(AuditAction.PAYMENT_FAILED, False, detail))
    return changes


def stripe_changes(
    before: BillingFacts, after: BillingFacts, paid_invoice_ids: frozenset[str] = frozenset()
) -> list[BillingChange]:
    """What a re-read of Stripe changed that the admin should see in the Activity tab: the
    reconcile pass's one comparison of Stripe's subscription with the local rows and seats.

    `paid_invoice_ids`: invoices Stripe reports paid, to tell a recovered payment from an
    invoice that was voided.
    """
    changes = _subscription_changes(before, after) + _seat_changes(before, after)
    if after.card_last4 and (before.card_brand, before.card_last4) != (
        after.card_brand,
        after.card_last4,
    ):
        detail = {"card_brand": after.card_brand, "card_last4": after.card_last4}
        changes.append(BillingChange(AuditAction.CHANGE_CARD, True, detail))
    if after.details != before.details:
        changes.append(BillingChange(AuditAction.BILLING_DETAILS, True, {}))
    return changes + _payment_changes(before, after, paid_invoice_ids)
