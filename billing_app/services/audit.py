"""The append-only audit log: every mutation records who did what, when, and the outcome."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Self

import sqlalchemy as sa
from sqlmodel import Session

from billing_app.i18n import N_
from billing_app.models import AuditLog, core_table, utcnow


class AuditAction(StrEnum):
    """Every action the log records; the value is what is stored, `label` what the page shows
    (English, the catalogue's msgid: translated where shown)."""

    label: str

    def __new__(cls, value: str, label: str) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    ACCOUNT_CREATE = "account.create", N_("Account created")
    ACCOUNT_API_KEY = "account.api_key", N_("New connector API key issued")
    ACCOUNT_SET_PASSWORD = "account.set_password", N_("Page password set")
    ACCOUNT_CLEAR_PASSWORD = "account.clear_password", N_("Page password removed")
    PAGE_LAUNCH = "page.launch", N_("Billing Page opened")
    PAGE_SIGN_IN = "page.sign_in", N_("Signed in")
    PAGE_CHANGE_PASSWORD = "page.change_password", N_("Password changed")
    PURCHASE_UNLIMITED = "billing.purchase_unlimited", N_("Unlimited Version purchased")
    PURCHASE_UNLIMITED_AUTHENTICATION = (
        "billing.purchase_unlimited.authentication_requested",
        N_("Bank asked to confirm the Unlimited Version purchase"),
    )
    ADD_LICENSES = "billing.add_licenses", N_("Licenses added")
    ADD_LICENSES_AUTHENTICATION = (
        "billing.add_licenses.authentication_requested",
        N_("Bank asked to confirm added licenses"),
    )
    CHANGE_CARD = "billing.change_card", N_("Card changed")
    CHANGE_CARD_AUTHENTICATION = (
        "billing.change_card.authentication_requested",
        N_("Bank asked to confirm the open invoice's payment"),
    )
    CONVERT_YEARLY = "billing.convert_yearly", N_("Switched to yearly billing")
    CONVERT_YEARLY_AUTHENTICATION = (
        "billing.convert_yearly.authentication_requested",
        N_("Bank asked to confirm the switch to yearly billing"),
    )
    CANCEL = "billing.cancel", N_("Subscription cancelled at period end — reason saved")
    CANCEL_FEEDBACK = "billing.cancel_feedback", N_("Cancellation reason saved")
    RESUME = "billing.resume", N_("Subscription resumed")
    REDUCE_LICENSES = "billing.reduce_licenses", N_("Fewer licenses scheduled for the renewal")
    SWITCH_MONTHLY = "billing.switch_monthly", N_("Monthly billing scheduled for the renewal")
    KEEP_LICENSES = "billing.keep_licenses", N_("Scheduled license reduction undone")
    KEEP_YEARLY = "billing.keep_yearly", N_("Scheduled switch to monthly billing undone")
    CREATE_CUSTOMER = "billing.create_customer", N_("Stripe customer created")
    BILLING_DETAILS = "billing.details", N_("Billing details updated")
    AUTHENTICATE_PAYMENT = "billing.authenticate_payment", N_("Payment confirmed with the bank")
    # Changes Stripe reports by webhook (a renewal, the Dashboard, the card network).
    SUBSCRIPTION_CHANGED = "stripe.subscription_changed", N_("Subscription changed at Stripe")
    SUBSCRIPTION_ENDED = (
        "stripe.subscription_ended",
        N_("Subscription ended: back to the free version"),
    )
    CANCEL_SCHEDULED = "stripe.cancel_scheduled", N_("Subscription set to cancel at period end")
    PAYMENT_FAILED = "stripe.payment_failed", N_("Payment failed")
    PAYMENT_ACTION_REQUIRED = (
        "stripe.payment_action_required",
        N_("Bank asks to confirm a payment"),
    )
    PAYMENT_SUCCEEDED = "stripe.payment_succeeded", N_("Open invoice paid")
    USERS_EXCEED_LICENSES = (
        "seats.users_exceed_licenses",
        N_("More users than licenses: new users are refused until resolved"),
    )
    SEED_SUBSCRIPTION = "seed.subscription", N_("Demo subscription created")
    INVOICE_NUMBER = "invoice.number", N_("Invoices numbered")
    DOMAINS_UPDATE = "domains.update", N_("Domains updated")
    LICENSE_ACTIVATE = "license.activate", N_("User activated")
    LICENSE_RELEASE = "license.release", N_("User removed")


class AuditOutcome(StrEnum):
    OK = "ok"
    ERROR = "error"


_INSERT = sa.insert(core_table(AuditLog))


def record(
    db: Session | sa.Connection,
    *,
    action: AuditAction,
    actor: str,
    account_id: int | None,
    outcome: AuditOutcome = AuditOutcome.OK,
    **detail: Any,
) -> None:
    """Insert an audit entry in the caller's transaction (a Session's or a Core connection's).

    A Core INSERT, not an ORM object: it is on every mutation's path, and nothing reads it back.
    """
    connection = db.connection() if isinstance(db, Session) else db
    connection.execute(
        _INSERT,
        {
            "at": utcnow(),
            "account_id": account_id,
            "actor": actor,
            "action": action,
            "outcome": outcome,
            "detail": json.dumps(detail, default=str, sort_keys=True),
        },
    )
