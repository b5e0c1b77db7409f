"""The money flows of the Billing Page (seed steps 0, 3, 4, 5, 9).

Every action: validate → record its intent (a `BillingAction` row, unique by
idempotency key, at most one pending per account) → call Stripe with that key →
apply Stripe's answer to the account → audit log. A double click or a retry
with the same key returns the first outcome instead of charging again; a second
tab working from a stale page is refused by the expected-quantity check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from billing_app.db import session_scope
from billing_app.models import (
    ACTION_FAILED,
    ACTION_PENDING,
    ACTION_SUCCEEDED,
    INTERVAL_MONTH,
    INTERVAL_YEAR,
    PLAN_UNLIMITED,
    Account,
    BillingAction,
    CancellationFeedback,
    utcnow,
)
from billing_app.services import audit
from billing_app.services.accounts import licenses_used
from billing_app.services.billing import apply_card, apply_payment_state, apply_subscription
from billing_app.services.money import format_money
from billing_app.services.summary import format_date
from billing_app.settings import Settings
from billing_app.stripe_gateway import GatewayError, InvoiceSummary, StripeClient, SubscriptionSnapshot, plan_id_for

log = logging.getLogger(__name__)
T = TypeVar("T")

KIND_PURCHASE_UNLIMITED = "purchase_unlimited"
KIND_ADD_LICENSES = "add_licenses"
KIND_CHANGE_CARD = "change_card"
KIND_CONVERT_YEARLY = "convert_yearly"
KIND_CANCEL = "cancel"
KIND_RESUME = "resume"

MAX_LICENSES_PER_PURCHASE = 1000
MAX_FEEDBACK_CHARS = 2000
# A pending action older than this was cut short (a crash): it no longer blocks the account.
STALE_PENDING_AFTER = timedelta(minutes=5)

MSG_STALE_PAGE = "Your subscription changed in another window. Review the new figures and confirm again."
MSG_BUSY = "Another billing change for this account is in progress. Please wait a moment and try again."
MSG_ALREADY_YEARLY = "This subscription is already billed yearly."


class BillingError(Exception):
    """An action that cannot be done; `str(exc)` is the message for the user."""


@dataclass(frozen=True)
class ActionResult:
    message: str
    already_done: bool = False


@dataclass(frozen=True)
class ChangePreview:
    """What a change costs: charged (or credited, when negative) now, and the new recurring amount."""

    charged_now_cents: int
    recurring_cents: int
    interval: str
    currency: str

    @property
    def charged_now(self) -> str:
        return format_money(abs(self.charged_now_cents), self.currency)

    @property
    def recurring(self) -> str:
        return f"{format_money(self.recurring_cents, self.currency)} per {self.interval}"

    @property
    def is_credit(self) -> bool:
        return self.charged_now_cents < 0


def parse_license_count(value: Any, *, minimum: int = 1) -> int:
    """A whole number of licenses, `minimum`–1000; anything else is refused with a message."""
    text = str(value).strip() if value is not None else ""
    if not text.isdigit() or not minimum <= int(text) <= MAX_LICENSES_PER_PURCHASE:
        raise BillingError(f"Enter a whole number of licenses from {minimum} to {MAX_LICENSES_PER_PURCHASE}.")
    return int(text)


def _payment_message(invoice: InvoiceSummary | None, success: str) -> str:
    if invoice is not None and invoice.status == "open":
        return (f"{success} But the payment of {format_money(invoice.amount_due, invoice.currency)} failed: "
                "update your card to pay the open invoice.")
    if invoice is not None and invoice.amount_paid > 0:
        return f"{success} {format_money(invoice.amount_paid, invoice.currency)} was charged to your card."
    return success


def _apply_change(success: Callable[[SubscriptionSnapshot], str]):
    """Apply a (subscription, invoice charged for it) answer; the message says how the payment went."""

    def apply(account: Account, result: tuple[SubscriptionSnapshot, InvoiceSummary | None]) -> str:
        subscription, invoice = result
        apply_subscription(account, subscription)
        if invoice is not None:
            apply_payment_state(account, invoice)
        return _payment_message(invoice, success(subscription))

    return apply


# Checks made in the action's first transaction, on the account as stored; raise BillingError.
Check = Callable[[Session, Account], None]


def _require_subscription(account: Account) -> None:
    if account.plan != PLAN_UNLIMITED or not account.stripe_subscription_id:
        raise BillingError("This account has no Unlimited Version subscription.")


def _require_customer(_session: Session, account: Account) -> None:
    if not account.stripe_customer_id:
        raise BillingError("Start again: the card form has expired.")


# The BillingAction statements, in Core (built once): they run on every action.
_actions = BillingAction.__table__
_ABANDON_STALE = (
    sa.update(_actions)
    .where(_actions.c.account_id == sa.bindparam("of_account"), _actions.c.status == ACTION_PENDING,
           _actions.c.created_at < sa.bindparam("cutoff"))
    .values(status=ACTION_FAILED, message="abandoned", finished_at=sa.bindparam("now"))
)
_ACTION_BY_KEY = (
    sa.select(_actions.c.id, _actions.c.account_id, _actions.c.kind, _actions.c.status, _actions.c.message)
    .where(_actions.c.idempotency_key == sa.bindparam("key"))
)
_INSERT_ACTION = sa.insert(_actions).returning(_actions.c.id)
_RETRY_ACTION = (
    sa.update(_actions).where(_actions.c.id == sa.bindparam("action_id"))
    .values(status=ACTION_PENDING, message="", finished_at=None, created_at=sa.bindparam("now"))
)
_FINISH_ACTION = (
    sa.update(_actions).where(_actions.c.id == sa.bindparam("action_id"))
    .values(status=sa.bindparam("new_status"), message=sa.bindparam("new_message"), finished_at=sa.bindparam("now"))
)


class BillingService:
    def __init__(self, gateway: StripeClient, settings: Settings):
        self.gateway = gateway
        self.settings = settings
        self._catalogue_ready = False

    # Reading ------------------------------------------------------------------

    def _load(self, account_id: int) -> Account:
        with session_scope() as session:
            account = session.get(Account, account_id)
            if account is None:
                raise BillingError("This account no longer exists.")
            return account

    def _subscribed(self, account_id: int) -> Account:
        account = self._load(account_id)
        _require_subscription(account)
        return account

    def _plan_id(self, interval: str) -> str:
        # Plan ids follow from the configured prices. The plans are made sure of once per
        # process (if the start-up attempt failed, the first purchase does it).
        if not self._catalogue_ready:
            self.gateway.ensure_catalogue()
            self._catalogue_ready = True
        return plan_id_for(interval, self._unit_price(interval), self.settings.billing_currency)

    def _unit_price(self, interval: str) -> int:
        s = self.settings
        return s.billing_price_yearly_cents if interval == INTERVAL_YEAR else s.billing_price_monthly_cents

    def _fresh_subscription(self, account: Account, expected_licenses: int | None) -> SubscriptionSnapshot:
        subscription = self.gateway.retrieve_subscription(account.stripe_subscription_id)
        if expected_licenses is not None and subscription.quantity != expected_licenses:
            raise BillingError(MSG_STALE_PAGE)
        return subscription

    def preview_additional_licenses(self, account_id: int, count: Any) -> ChangePreview:
        extra = parse_license_count(count)
        account = self._subscribed(account_id)
        try:
            subscription = self._fresh_subscription(account, None)
            quantity = subscription.quantity + extra
            preview = self.gateway.preview_change(subscription, plan_id=subscription.plan_id, quantity=quantity)
        except GatewayError as exc:
            raise BillingError(exc.user_message) from exc
        return ChangePreview(preview.charged_now, quantity * subscription.unit_amount,
                             subscription.interval, subscription.currency)

    def preview_yearly(self, account_id: int) -> ChangePreview:
        account = self._subscribed(account_id)
        if account.billing_interval != INTERVAL_MONTH:
            raise BillingError(MSG_ALREADY_YEARLY)
        try:
            subscription = self._fresh_subscription(account, None)
            plan_id = self._plan_id(INTERVAL_YEAR)
            preview = self.gateway.preview_change(subscription, plan_id=plan_id, quantity=subscription.quantity)
        except GatewayError as exc:
            raise BillingError(exc.user_message) from exc
        return ChangePreview(preview.charged_now, subscription.quantity * self._unit_price(INTERVAL_YEAR),
                             INTERVAL_YEAR, subscription.currency)

    # The action frame -------------------------------------------------------------
    # Two transactions per action: the intent (with the checks that need the database), then
    # Stripe's answer. Neither reads before it writes: on SQLite a transaction that reads first
    # cannot write any more once another connection has committed meanwhile.

    def _claim(self, account_id: int, kind: str, key: str, params: dict, actor: str,
               check: Check) -> tuple[Account, int] | ActionResult:
        """The earlier outcome of this key; or else the account, checked, and the id of the intent recorded."""
        if not 8 <= len(key) <= 128:
            raise BillingError("This form has expired. Please reload the page.")
        with session_scope() as session:
            connection, now = session.connection(), utcnow()
            connection.execute(_ABANDON_STALE, {"of_account": account_id, "cutoff": now - STALE_PENDING_AFTER,
                                                "now": now})
            existing = connection.execute(_ACTION_BY_KEY, {"key": key}).first()
            if existing is not None and (existing.account_id != account_id or existing.kind != kind):
                raise BillingError("This form has expired. Please reload the page.")
            if existing is not None and existing.status == ACTION_SUCCEEDED:
                return ActionResult(existing.message, already_done=True)  # a double click, a retry
            if existing is not None and existing.status == ACTION_PENDING:
                raise BillingError("This change is already being processed. Please wait.")
            account = session.get(Account, account_id)
            if account is None:
                raise BillingError("This account no longer exists.")
            check(session, account)
            try:
                if existing is None:
                    action_id = connection.execute(_INSERT_ACTION, {
                        "account_id": account_id, "kind": kind, "idempotency_key": key, "status": ACTION_PENDING,
                        "params": json.dumps(params, sort_keys=True), "message": "", "actor": actor,
                        "created_at": now,
                    }).scalar_one()
                else:  # a retry of a failed attempt, with the same key
                    action_id = existing.id
                    connection.execute(_RETRY_ACTION, {"action_id": action_id, "now": now})
            except sa.exc.IntegrityError as exc:  # another action of this account is pending
                raise BillingError(MSG_BUSY) from exc
            return account, action_id

    @staticmethod
    def _finish(session: Session, action_id: int, status: str, message: str = "") -> None:
        session.connection().execute(_FINISH_ACTION, {
            "action_id": action_id, "new_status": status, "new_message": message[:500], "now": utcnow()})

    def _fail(self, action_id: int, account_id: int, kind: str, actor: str, params: dict, message: str) -> None:
        with session_scope() as session:
            self._finish(session, action_id, ACTION_FAILED, message)
            audit.record(session, action=f"billing.{kind}", actor=actor, account_id=account_id,
                         outcome=audit.OUTCOME_ERROR, message=message, **params)

    def _run(self, *, account_id: int, kind: str, key: str, actor: str, params: dict, check: Check,
             work: Callable[[Account], T], apply: Callable[[Account, T], str]) -> ActionResult:
        claimed = self._claim(account_id, kind, key, params, actor, check)
        if isinstance(claimed, ActionResult):
            return claimed
        account, action_id = claimed
        try:
            result = work(account)
        except (GatewayError, BillingError) as exc:
            message = exc.user_message if isinstance(exc, GatewayError) else str(exc)
            self._fail(action_id, account_id, kind, actor, params, message)
            self._try_resync(account_id)
            raise BillingError(message) from exc
        except Exception:
            log.exception("billing action %s failed", kind)
            self._fail(action_id, account_id, kind, actor, params, "internal error")
            raise
        # Applying Stripe's answer and closing the action happen in one transaction. The account
        # read by the claim is merged without a SELECT: only the fields Stripe's answer sets are written.
        with session_scope() as session:
            account = session.merge(account, load=False)
            message = apply(account, result)
            self._finish(session, action_id, ACTION_SUCCEEDED, message)
            audit.record(session, action=f"billing.{kind}", actor=actor, account_id=account_id,
                         outcome=audit.OUTCOME_OK, message=message, **params)
        return ActionResult(message)

    # Actions --------------------------------------------------------------------

    def add_licenses(self, account_id: int, count: Any, *, expected_licenses: int, key: str,
                     actor: str) -> ActionResult:
        extra = parse_license_count(count)

        def check(_session: Session, account: Account) -> None:
            _require_subscription(account)
            if account.licenses_purchased != expected_licenses:
                raise BillingError(MSG_STALE_PAGE)

        def work(account: Account) -> tuple[SubscriptionSnapshot, InvoiceSummary | None]:
            subscription = self._fresh_subscription(account, expected_licenses)
            changed = self.gateway.change_subscription(
                subscription, plan_id=subscription.plan_id, quantity=subscription.quantity + extra,
                idempotency_key=key)
            return changed, self.gateway.invoice_now(changed, idempotency_key=key)

        noun = "license" if extra == 1 else "licenses"
        return self._run(
            account_id=account_id, kind=KIND_ADD_LICENSES, key=key, actor=actor,
            params={"licenses": extra, "from": expected_licenses}, check=check, work=work,
            apply=_apply_change(lambda sub: f"Added {extra} {noun}: you now have {sub.quantity}."))

    def convert_to_yearly(self, account_id: int, *, key: str, actor: str) -> ActionResult:
        def check(_session: Session, account: Account) -> None:
            _require_subscription(account)
            if account.billing_interval != INTERVAL_MONTH:
                raise BillingError(MSG_ALREADY_YEARLY)

        def work(account: Account) -> tuple[SubscriptionSnapshot, InvoiceSummary | None]:
            subscription = self._fresh_subscription(account, None)
            if subscription.interval != INTERVAL_MONTH:
                raise BillingError(MSG_ALREADY_YEARLY)
            changed = self.gateway.change_subscription(
                subscription, plan_id=self._plan_id(INTERVAL_YEAR), quantity=subscription.quantity,
                idempotency_key=key)
            if changed.interval != INTERVAL_YEAR:
                raise BillingError("The payment service did not switch the plan. Nothing was charged.")
            # Stripe invoices an interval change at once; pay it if it is still open.
            invoice = (self.gateway.pay_invoice(changed.latest_invoice_id, idempotency_key=key)
                       if changed.latest_invoice_id else None)
            return changed, invoice

        return self._run(account_id=account_id, kind=KIND_CONVERT_YEARLY, key=key, actor=actor, params={},
                         check=check, work=work,
                         apply=_apply_change(lambda _sub: "Your subscription is now billed yearly."))

    def start_card_setup(self, account_id: int, *, key: str) -> str:
        """A SetupIntent client secret for Stripe.js; creates the Stripe customer on first use."""
        account = self._load(account_id)
        try:
            customer_id = account.stripe_customer_id
            if not customer_id:
                customer_id = self.gateway.create_customer(
                    name=account.name, email=account.admin_email, account_ref=account.slug,
                    idempotency_key=f"customer:{account.id}:{int(account.created_at.timestamp())}")
                with session_scope() as session:
                    stored = session.get(Account, account_id)
                    stored.stripe_customer_id = customer_id
                    audit.record(session, action="billing.create_customer", actor="system",
                                 account_id=account_id, customer=customer_id)
            return self.gateway.create_setup_intent(customer_id, idempotency_key=key)
        except GatewayError as exc:
            raise BillingError(exc.user_message) from exc

    def _confirmed_card(self, setup_secret: str) -> str:
        payment_method = self.gateway.setup_intent_payment_method(setup_secret)
        if not payment_method:
            raise BillingError("The card was not confirmed. Please enter it again.")
        return payment_method

    def save_card(self, account_id: int, setup_secret: str, *, key: str, actor: str) -> ActionResult:
        """Make the card collected by Stripe.js the default; pay an unpaid invoice with it."""

        def work(account: Account):
            card = self.gateway.attach_default_card(
                account.stripe_customer_id, self._confirmed_card(setup_secret), idempotency_key=key)
            invoice = (self.gateway.pay_invoice(account.unpaid_invoice_id, idempotency_key=key)
                       if account.unpaid_invoice_id else None)
            return card, invoice

        def apply(account: Account, result) -> str:
            card, invoice = result
            apply_card(account, card)
            message = f"Card saved: {card.brand.title()} ending {card.last4}."
            if invoice is None:
                return message
            apply_payment_state(account, invoice)
            if invoice.status == "paid":
                return f"{message} The open invoice of {format_money(invoice.amount_paid, invoice.currency)} is paid."
            return f"{message} But the open invoice could not be paid with it; try another card."

        return self._run(account_id=account_id, kind=KIND_CHANGE_CARD, key=key, actor=actor, params={},
                         check=_require_customer, work=work, apply=apply)

    def purchase_unlimited(self, account_id: int, *, licenses: Any, interval: str, setup_secret: str,
                           key: str, actor: str) -> ActionResult:
        quantity = parse_license_count(licenses)
        if interval not in (INTERVAL_MONTH, INTERVAL_YEAR):
            raise BillingError("Choose monthly or yearly billing.")

        def check(session: Session, account: Account) -> None:
            if account.plan == PLAN_UNLIMITED:
                raise BillingError("This account already has the Unlimited Version.")
            _require_customer(session, account)
            # Every user already using the connector needs a license.
            parse_license_count(quantity, minimum=max(licenses_used(session, account.id), 1))

        def work(account: Account):
            card = self.gateway.attach_default_card(
                account.stripe_customer_id, self._confirmed_card(setup_secret), idempotency_key=key)
            subscription = self.gateway.create_subscription(
                account.stripe_customer_id, self._plan_id(interval), quantity, idempotency_key=key)
            return card, subscription

        def apply(account: Account, result) -> str:
            card, subscription = result
            apply_card(account, card)
            apply_subscription(account, subscription)
            noun = "license" if quantity == 1 else "licenses"
            return f"Welcome to the Unlimited Version: {quantity} {noun}, billed {'yearly' if interval == INTERVAL_YEAR else 'monthly'}."

        return self._run(account_id=account_id, kind=KIND_PURCHASE_UNLIMITED, key=key, actor=actor,
                         params={"licenses": quantity, "interval": interval}, check=check, work=work, apply=apply)

    def cancel(self, account_id: int, *, reason: Any, additional_features: Any, key: str,
               actor: str) -> ActionResult:
        reason_text = str(reason or "").strip()
        features_text = str(additional_features or "").strip()
        if not reason_text:
            raise BillingError("Please enter a reason for cancelling.")
        if len(reason_text) > MAX_FEEDBACK_CHARS or len(features_text) > MAX_FEEDBACK_CHARS:
            raise BillingError(f"Please keep each answer under {MAX_FEEDBACK_CHARS} characters.")

        def check(session: Session, account: Account) -> None:
            _require_subscription(account)
            if account.cancel_at is not None:
                raise BillingError("This subscription is already set to cancel.")
            # The feedback is committed with the intent: it is kept whatever Stripe answers next.
            session.add(CancellationFeedback(account_id=account_id, reason=reason_text,
                                             additional_features=features_text, actor=actor))
            audit.record(session, action="billing.cancel_feedback", actor=actor, account_id=account_id)

        def apply(account: Account, subscription: SubscriptionSnapshot) -> str:
            apply_subscription(account, subscription)
            return f"Your subscription will end on {format_date(account.cancel_at)}. You can resume it until then."

        return self._run(
            account_id=account_id, kind=KIND_CANCEL, key=key, actor=actor, params={}, check=check,
            work=lambda account: self.gateway.set_cancel_at_period_end(
                account.stripe_subscription_id, True, idempotency_key=key),
            apply=apply)

    def resume(self, account_id: int, *, key: str, actor: str) -> ActionResult:
        def check(_session: Session, account: Account) -> None:
            _require_subscription(account)
            if account.cancel_at is None:
                raise BillingError("This subscription is not set to cancel.")

        def apply(account: Account, subscription: SubscriptionSnapshot) -> str:
            apply_subscription(account, subscription)
            return "Your subscription continues. Nothing else changed."

        return self._run(
            account_id=account_id, kind=KIND_RESUME, key=key, actor=actor, params={}, check=check,
            work=lambda account: self.gateway.set_cancel_at_period_end(
                account.stripe_subscription_id, False, idempotency_key=key),
            apply=apply)

    # Re-sync (webhooks) -------------------------------------------------------------

    def _try_resync(self, account_id: int) -> None:
        # After a failure (a timeout may still have been applied), show what Stripe holds.
        try:
            self.resync(account_id)
        except GatewayError as exc:
            log.info("re-sync after a failed action skipped: %s", exc.code)

    def resync(self, account_id: int, subscription_id: str | None = None) -> None:
        """Re-read subscription, card and unpaid invoice from Stripe and store them.

        `subscription_id` (from a webhook) is adopted when the account has no live one.
        """
        account = self._load(account_id)
        if not account.stripe_customer_id:
            return
        subscription_id = account.stripe_subscription_id or subscription_id
        subscription = self.gateway.retrieve_subscription(subscription_id) if subscription_id else None
        card = self.gateway.default_card(account.stripe_customer_id)
        open_invoice = self.gateway.open_invoice(account.stripe_customer_id)
        with session_scope() as session:
            stored = session.get(Account, account_id)
            if subscription is not None:
                apply_subscription(stored, subscription)
            apply_card(stored, card)
            apply_payment_state(stored, open_invoice)
            session.add(stored)
