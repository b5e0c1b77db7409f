"""Database tables (SQLModel, registered with Reflex; schema changes go through Alembic).

Money amounts are integer minor units. Timestamps are timezone-aware UTC
(SQLModel's UTCDateTime refuses naive values).
"""

from __future__ import annotations

from datetime import datetime, timezone

import reflex as rx
import sqlalchemy as sa
from sqlmodel import Field, SQLModel

PLAN_FREE = "free"
PLAN_UNLIMITED = "unlimited"
INTERVAL_MONTH = "month"
INTERVAL_YEAR = "year"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
    plan: str = Field(default=PLAN_FREE, max_length=16)
    billing_interval: str | None = Field(default=None, max_length=8)
    subscription_status: str | None = Field(default=None, max_length=32)
    licenses_purchased: int = Field(default=0, ge=0)
    current_period_end: datetime | None = None
    cancel_at: datetime | None = None
    next_invoice_amount_cents: int | None = None
    currency: str = Field(default="usd", max_length=3)

    # Summary of the default card as Stripe reports it (never the number itself).
    card_brand: str | None = Field(default=None, max_length=32)
    card_last4: str | None = Field(default=None, max_length=4)
    card_exp_month: int | None = None
    card_exp_year: int | None = None

    password_hash: str | None = Field(default=None, max_length=255)
    api_key_hash: str | None = Field(default=None, max_length=255)

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
    outcome: str = Field(max_length=16)  # "ok" | "error"
    detail: str = Field(default="", sa_type=sa.Text)


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
