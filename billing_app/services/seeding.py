"""The demo accounts (`demo`: Acme Corp on the Unlimited Version; `free-demo`: Globex on the free
version), created idempotently through the real Stripe gateway."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session, select

from billing_app.db import session_scope
from billing_app.models import Account, ActivatedUser, AllowedDomain
from billing_app.plans import Interval
from billing_app.services import audit
from billing_app.services.accounts import AccountNotFound, create_account, get_account
from billing_app.services.billing import apply_card, apply_subscription
from billing_app.settings import Settings
from billing_app.stripe.client import StripeClient
from billing_app.stripe.snapshots import CardSummary, SubscriptionSnapshot

ACTOR = "billing-admin seed-demo"


@dataclass(frozen=True)
class DemoAccount:
    slug: str
    name: str
    admin_email: str
    users: tuple[str, ...] = ()
    licenses: int = 0  # 0: stays on the free version


DEMO_ACCOUNTS = (
    DemoAccount(
        "demo",
        "Acme Corp",
        "admin@acme.test",
        users=("alice@acme.test", "bob@acme.test", "carol@acme.test"),
        licenses=10,
    ),
    DemoAccount("free-demo", "Globex", "admin@globex.test"),
)


def _ensure_local(session: Session, demo: DemoAccount) -> int:
    """The demo account's id, after creating what it lacks in our database."""
    try:
        account = get_account(session, demo.slug)
    except AccountNotFound:
        account = create_account(
            session, slug=demo.slug, name=demo.name, admin_email=demo.admin_email, actor=ACTOR
        )
    assert account.id is not None  # read from or flushed to the database
    known = set(
        session.exec(select(ActivatedUser.email).where(ActivatedUser.account_id == account.id))
    )
    for email in demo.users:
        if email not in known:
            session.add(ActivatedUser(account_id=account.id, email=email))
    domain = demo.admin_email.rsplit("@", 1)[1]
    if (
        session.exec(
            select(AllowedDomain.id).where(
                AllowedDomain.account_id == account.id, AllowedDomain.domain == domain
            )
        ).first()
        is None
    ):
        session.add(AllowedDomain(account_id=account.id, domain=domain))
    return account.id


def subscribe_with_test_card(
    gateway: StripeClient,
    account_id: int,
    licenses: int,
    *,
    card: str = "pm_card_visa",
    yearly: bool = False,
) -> tuple[CardSummary, SubscriptionSnapshot]:
    """Create a Stripe customer with a test card and a paid subscription (demo data and tests)."""
    with session_scope() as session:
        account = session.get_one(Account, account_id)
        name, email, slug = account.name, account.admin_email, account.slug
    catalogue = gateway.ensure_catalogue()
    # A fresh key per attempt: the objects are new ones each time.
    attempt = uuid.uuid4().hex
    customer_id = gateway.create_customer(
        name=name, email=email, account_ref=slug, idempotency_key=f"seed:{slug}:{attempt}:customer"
    )
    with session_scope() as session:
        account = session.get_one(Account, account_id)
        account.stripe_customer_id = customer_id
        account.stripe_subscription_id = None
    summary = gateway.attach_default_card(
        customer_id, card, idempotency_key=f"seed:{slug}:{attempt}:card"
    )
    price_id = catalogue.price_id(Interval.YEAR if yearly else Interval.MONTH)
    return summary, paid_subscription(
        gateway, customer_id, price_id, licenses, key=f"seed:{slug}:{attempt}"
    )


def paid_subscription(
    gateway: StripeClient, customer_id: str, price_id: str, quantity: int, *, key: str
) -> SubscriptionSnapshot:
    """A subscription whose first invoice is paid off-session with the customer's default card
    (demo data and tests: no customer is on a page to confirm it)."""
    subscription, first_payment = gateway.create_subscription(
        customer_id, price_id, quantity, idempotency_key=f"{key}:subscription"
    )
    payment = gateway.pay_invoice(first_payment.invoice_id, idempotency_key=f"{key}:pay")
    if not payment.paid:
        raise RuntimeError(
            f"the first payment of {subscription.id} did not go through ({payment.error_code})"
        )
    return gateway.retrieve_subscription(subscription.id)


def _ensure_subscription(gateway: StripeClient, account_id: int, demo: DemoAccount) -> None:
    """Give the demo account a Stripe customer, a Visa card and a paid subscription.

    After the embedded emulator was reset our database may name a customer that
    Stripe no longer has: then everything is created again.
    """
    with session_scope() as session:
        account = session.get_one(Account, account_id)
        customer_id = account.stripe_customer_id
        subscription_id = account.stripe_subscription_id
    if customer_id and subscription_id and gateway.customer_exists(customer_id):
        subscription = gateway.retrieve_subscription(subscription_id)
        card = gateway.default_card(customer_id)
    else:
        card, subscription = subscribe_with_test_card(gateway, account_id, demo.licenses)
    with session_scope() as session:
        account = session.get_one(Account, account_id)
        apply_subscription(account, subscription)
        apply_card(account, card)
        session.add(account)
        audit.record(
            session,
            action=audit.AuditAction.SEED_SUBSCRIPTION,
            actor=ACTOR,
            account_id=account_id,
            subscription=subscription.id,
            quantity=subscription.quantity,
        )


def seed_demo(gateway: StripeClient, settings: Settings) -> list[str]:
    """Create or repair the demo accounts; return their slugs."""
    if settings.stripe_live_mode:
        raise RuntimeError("Refusing to seed demo accounts with a live Stripe key.")
    for demo in DEMO_ACCOUNTS:
        with session_scope() as session:
            account_id = _ensure_local(session, demo)
        if demo.licenses:
            _ensure_subscription(gateway, account_id, demo)
    return [demo.slug for demo in DEMO_ACCOUNTS]
