"""Keeping an account's local billing rows in step with what Stripe answered.

Every Stripe response that describes a subscription or a card is applied here,
so the page always shows Stripe's truth rather than what we asked for.
"""

from __future__ import annotations

from billing_app.models import (
    Account,
    utcnow,
)
from billing_app.plans import Plan
from billing_app.stripe.snapshots import CardSummary, InvoicePayment, SubscriptionSnapshot

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
