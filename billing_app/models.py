"""Database tables (SQLModel, registered with Reflex; schema changes go through Alembic).

Money amounts are integer minor units. Timestamps are timezone-aware UTC
(SQLModel's UTCDateTime refuses naive values).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import reflex as rx
import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from billing_app.plans import Plan


def utcnow() -> datetime:
    return datetime.now(UTC)


def core_table(model: type[SQLModel]) -> sa.Table:
    """The SQLAlchemy Core table of a table model (SQLModel sets `__table__` without typing it)."""
    table = sa.inspect(model).local_table
    assert isinstance(table, sa.Table)
    return table


@rx.ModelRegistry.register
class Account(SQLModel, table=True):
    """A customer of the connector: one Billing Page, one Stripe customer."""

    id: int | None = Field(default=None, primary_key=True)
    # Short stable handle used by the CLI and in launch links ("demo").
    slug: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=True)
    name: str = Field(max_length=200)
    admin_email: str = Field(max_length=254)

    stripe_customer_id: str | None = Field(default=None, max_length=255)
    stripe_subscription_id: str | None = Field(default=None, max_length=255)
    plan: str = Field(default=Plan.FREE, max_length=16)
    billing_interval: str | None = Field(default=None, max_length=8)
    subscription_status: str | None = Field(default=None, max_length=32)
    licenses_purchased: int = Field(default=0, ge=0)
    current_period_end: datetime | None = None
    cancel_at: datetime | None = None
    next_invoice_amount_cents: int | None = None
    # What the Stripe subscription schedule changes at the next renewal (`scheduled_at`):
    # the licenses and interval billed from then on; all None when nothing is scheduled.
    stripe_schedule_id: str | None = Field(default=None, max_length=255)
    scheduled_licenses: int | None = None
    scheduled_interval: str | None = Field(default=None, max_length=8)
    scheduled_at: datetime | None = None
    # Set while the latest invoice is unpaid (a failed payment): the page asks for a new card.
    unpaid_invoice_id: str | None = Field(default=None, max_length=255)
    unpaid_amount_cents: int | None = None
    # That invoice's payment waits for the customer (3-D Secure): "Authenticate Payment".
    unpaid_requires_action: bool = False
    # When the Stripe state stored last was read: an older read is never stored over it.
    stripe_synced_at: datetime | None = None
    currency: str = Field(default="usd", max_length=3)

    # Summary of the default card as Stripe reports it (never the number itself).
    card_brand: str | None = Field(default=None, max_length=32)
    card_last4: str | None = Field(default=None, max_length=4)
    card_exp_month: int | None = None
    card_exp_year: int | None = None

    # A copy of the Billing Details saved at Stripe, for the page (invoices print Stripe's own).
    billing_name: str | None = Field(default=None, max_length=200)
    billing_email: str | None = Field(default=None, max_length=254)
    billing_line1: str | None = Field(default=None, max_length=200)
    billing_line2: str | None = Field(default=None, max_length=200)
    billing_city: str | None = Field(default=None, max_length=100)
    billing_postal_code: str | None = Field(default=None, max_length=20)
    billing_state: str | None = Field(default=None, max_length=100)
    billing_country: str | None = Field(default=None, max_length=2)
    billing_tax_id_type: str | None = Field(default=None, max_length=16)
    billing_tax_id_value: str | None = Field(default=None, max_length=100)

    password_hash: str | None = Field(default=None, max_length=255)
    # Bumped when the password changes or is cleared: sessions signed in before are ended.
    session_epoch: int = Field(default=0)
    # Unique and indexed: the license API finds the account by the hash of the key it is given.
    api_key_hash: str | None = Field(
        default=None, max_length=255, sa_column_kwargs={"unique": True}, index=True
    )

    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


@rx.ModelRegistry.register
class ActivatedUser(SQLModel, table=True):
    """A connector user holding one of the account's licenses (one row = one seat)."""

    __tablename__ = "activated_user"
    __table_args__ = (sa.UniqueConstraint("account_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    email: str = Field(max_length=254)
    activated_at: datetime = Field(default_factory=utcnow)


@rx.ModelRegistry.register
class AllowedDomain(SQLModel, table=True):
    """An email domain whose users may activate a license of the account."""

    __tablename__ = "allowed_domain"
    __table_args__ = (sa.UniqueConstraint("account_id", "domain"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    domain: str = Field(max_length=253)


@rx.ModelRegistry.register
class LaunchTokenUse(SQLModel, table=True):
    """Ids of launch tokens already redeemed: a launch link opens the page once."""

    __tablename__ = "launch_token_use"

    token_id: str = Field(primary_key=True, max_length=64)
    account_id: int = Field(foreign_key="account.id")
    expires_at: datetime


@rx.ModelRegistry.register
class AuditLog(SQLModel, table=True):
    """Append-only record of every mutation: who, what, when, with which outcome."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    actor: str = Field(max_length=254)
    action: str = Field(max_length=64)
    outcome: str = Field(max_length=16)  # services/audit.py: AuditOutcome
    detail: str = Field(default="", sa_type=sa.Text)


class ActionStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@rx.ModelRegistry.register
class BillingAction(SQLModel, table=True):
    """One money action (purchase, card change, plan switch, cancel): its intent, then its result.

    The key is derived from the action and its parameters and is unique; at most one
    action per account may be pending at a time (also while it waits for the customer
    to authenticate a payment), so a double click, a second tab or a retry cannot
    charge twice.
    """

    __tablename__ = "billing_action"
    __table_args__ = (
        sa.Index(
            "ix_billing_action_one_pending_per_account",
            "account_id",
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    kind: str = Field(max_length=32)
    idempotency_key: str = Field(max_length=128, sa_column_kwargs={"unique": True})
    status: str = Field(default=ActionStatus.PENDING, max_length=16)
    params: str = Field(default="{}", sa_type=sa.Text)
    # What the action did at Stripe so far (attempt, ids it produced), so that a retry
    # resumes instead of repeating a step.
    progress: str = Field(default="{}", sa_type=sa.Text)
    message: str = Field(default="", max_length=500)
    actor: str = Field(max_length=254)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


@rx.ModelRegistry.register
class CancellationFeedback(SQLModel, table=True):
    """Why a customer cancelled: saved before Stripe is asked, so it is never lost."""

    __tablename__ = "cancellation_feedback"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    reason: str = Field(sa_type=sa.Text)
    additional_features: str = Field(default="", sa_type=sa.Text)
    actor: str = Field(max_length=254)
    created_at: datetime = Field(default_factory=utcnow)


@rx.ModelRegistry.register
class StripeEvent(SQLModel, table=True):
    """Each webhook event once, by Stripe's id, with the outcome of processing it."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    received_at: datetime = Field(default_factory=utcnow)
    outcome: str = Field(default="", max_length=16)  # services/webhooks.py: WebhookOutcome
    detail: str = Field(default="", max_length=500)


@rx.ModelRegistry.register
class SignInAttempt(SQLModel, table=True):
    """Password attempts on an account's Billing Page; failures drive the lockout (kept across
    restarts)."""

    __tablename__ = "sign_in_attempt"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    succeeded: bool = False


@rx.ModelRegistry.register
class InvoiceNumber(SQLModel, table=True):
    """Our own number for an invoice Stripe gave none (localstripe never does).

    Assigned once, per account in sequence, and never changed: a number printed
    on a PDF must mean the same invoice forever.
    """

    __tablename__ = "invoice_number"
    __table_args__ = (sa.UniqueConstraint("account_id", "sequence"),)

    stripe_invoice_id: str = Field(primary_key=True, max_length=255)
    account_id: int = Field(foreign_key="account.id", index=True)
    sequence: int = Field(ge=1)
    number: str = Field(max_length=80, sa_column_kwargs={"unique": True})
    assigned_at: datetime = Field(default_factory=utcnow)


@rx.ModelRegistry.register
class PageSession(SQLModel, table=True):
    """A browser tab signed in to an account's Billing Page, as long as it stays signed in.

    Deleted when the tab's binding ends (sign-out, idle, password changed, another launch):
    invoice PDF links name it, so a link works only while the tab that asked for it does.
    """

    __tablename__ = "page_session"

    id: str = Field(primary_key=True, max_length=64)
    account_id: int = Field(foreign_key="account.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


@rx.ModelRegistry.register
class InvoiceLinkUse(SQLModel, table=True):
    """Ids of invoice PDF links already used: a link serves its PDF once."""

    __tablename__ = "invoice_link_use"

    link_id: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(index=True)


@rx.ModelRegistry.register
class LicenseChange(SQLModel, table=True):
    """A committed change of what the license check answers for an account (its plan, its API key,
    its seats); `account_id` None: of any account. Append-only, pruned after an hour: the feed each
    serving process follows to drop its cached check answers (services/license_answers.py)."""

    __tablename__ = "license_change"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int | None = None
    changed_at: datetime = Field(default_factory=utcnow, index=True)
