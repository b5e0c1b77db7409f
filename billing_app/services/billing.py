"""Keeping an account's local billing rows in step with what Stripe answered.

Every Stripe response that describes a subscription or a card is applied here,
so the page always shows Stripe's truth rather than what we asked for.
"""

from __future__ import annotations

from datetime import datetime, timezone

from billing_app.models import INTERVAL_MONTH, INTERVAL_YEAR, PLAN_FREE, PLAN_UNLIMITED, Account, utcnow
from billing_app.stripe_gateway import CardSummary, InvoiceSummary, SubscriptionSnapshot

# Statuses in which the customer keeps the Unlimited Version (past_due: Stripe is still retrying).
_LIVE_STATUSES = {"active", "trialing", "past_due", "incomplete"}


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def apply_subscription(account: Account, subscription: SubscriptionSnapshot) -> None:
    account.stripe_subscription_id = subscription.id
    account.subscription_status = subscription.status
    account.updated_at = utcnow()
    if subscription.status not in _LIVE_STATUSES:
        account.plan = PLAN_FREE
        account.billing_interval = None
        account.licenses_purchased = 0
        account.current_period_end = None
        account.cancel_at = None
        account.next_invoice_amount_cents = None
        return
    account.plan = PLAN_UNLIMITED
    account.billing_interval = INTERVAL_YEAR if subscription.interval == INTERVAL_YEAR else INTERVAL_MONTH
    account.licenses_purchased = subscription.quantity
    account.currency = subscription.currency
    account.current_period_end = _aware(subscription.current_period_end)
    if subscription.cancel_at_period_end or subscription.cancel_at:
        account.cancel_at = _aware(subscription.cancel_at or subscription.current_period_end)
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


def apply_payment_state(account: Account, open_invoice: InvoiceSummary | None) -> None:
    """Remember the unpaid invoice (the page then asks for a new card), or forget it once paid."""
    if open_invoice is not None and open_invoice.status == "open" and open_invoice.amount_due > 0:
        account.unpaid_invoice_id = open_invoice.id
        account.unpaid_amount_cents = open_invoice.amount_due
    else:
        account.unpaid_invoice_id = None
        account.unpaid_amount_cents = None
    account.updated_at = utcnow()
