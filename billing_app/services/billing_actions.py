"""The money flows of the Billing Page: purchase the Unlimited Version, add licenses, convert to
yearly billing, save a card (paying an open invoice with it), cancel and resume; and the Billing
Details that invoices are made out to.

Every action: validate → record its intent (a `BillingAction` row whose key is
derived from the action and its parameters; at most one pending per account) →
Stripe, with an idempotency key per step and attempt → apply Stripe's answer to
the account → audit log.

Actions resume instead of repeating. Each records what it did at Stripe as it
goes (`BillingAction.progress`); a retry (the same form, another tab after a
reload, after a restart) re-reads Stripe first and only does what is missing:
a change Stripe already applied is not sent again, a subscription already made
is not made twice. A payment the bank wants the customer to authenticate
(3-D Secure) leaves the action pending with the invoice's confirmation secret:
the page runs Stripe.js and then calls the action again with `resume=True`.
Charges are atomic at Stripe: a declined or unauthenticated payment leaves the
subscription as it was (pending updates) and nothing is granted here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from billing_app.db import session_scope
from billing_app.errors import MSG_ACCOUNT_MISSING, MSG_BUSY, ErrorCode, UserError
from billing_app.i18n import N_, _, format_date, ngettext
from billing_app.models import (
    Account,
    ActionStatus,
    CancellationFeedback,
    utcnow,
)
from billing_app.plans import Interval, Plan
from billing_app.services import audit
from billing_app.services.accounts import licenses_used
from billing_app.services.billing import (
    LIVE_STATUSES,
    BillingChange,
    apply_card,
    apply_payment_state,
    apply_subscription,
    billing_facts,
    stripe_changes,
)
from billing_app.services.billing_details import (
    InvalidDetails,
    form_defaults,
    parse_details,
    store_details,
)
from billing_app.services.money import format_money
from billing_app.services.summary import card_label
from billing_app.settings import Settings
from billing_app.stripe.client import StripeClient
from billing_app.stripe.errors import MSG_AUTHENTICATION_FAILED, GatewayError
from billing_app.stripe.snapshots import (
    BillingDetails,
    CardSummary,
    Catalogue,
    InvoicePayment,
    SubscriptionSnapshot,
)

log = logging.getLogger(__name__)


class ActionKind(StrEnum):
    """The money actions, as stored (BillingAction.kind)."""

    PURCHASE_UNLIMITED = "purchase_unlimited"
    ADD_LICENSES = "add_licenses"
    CHANGE_CARD = "change_card"
    CONVERT_YEARLY = "convert_yearly"
    CANCEL = "cancel"
    RESUME = "resume"
    BILLING_DETAILS = "billing_details"
    REDUCE_LICENSES = "reduce_licenses"
    SWITCH_MONTHLY = "switch_monthly"
    KEEP_LICENSES = "keep_licenses"
    KEEP_YEARLY = "keep_yearly"


# Each kind's audit action, and the one recorded when the bank asks the customer to confirm.
_AUDITED = {
    ActionKind.PURCHASE_UNLIMITED: audit.AuditAction.PURCHASE_UNLIMITED,
    ActionKind.ADD_LICENSES: audit.AuditAction.ADD_LICENSES,
    ActionKind.CHANGE_CARD: audit.AuditAction.CHANGE_CARD,
    ActionKind.CONVERT_YEARLY: audit.AuditAction.CONVERT_YEARLY,
    ActionKind.CANCEL: audit.AuditAction.CANCEL,
    ActionKind.RESUME: audit.AuditAction.RESUME,
    ActionKind.BILLING_DETAILS: audit.AuditAction.BILLING_DETAILS,
    ActionKind.REDUCE_LICENSES: audit.AuditAction.REDUCE_LICENSES,
    ActionKind.SWITCH_MONTHLY: audit.AuditAction.SWITCH_MONTHLY,
    ActionKind.KEEP_LICENSES: audit.AuditAction.KEEP_LICENSES,
    ActionKind.KEEP_YEARLY: audit.AuditAction.KEEP_YEARLY,
}
_AUTHENTICATION_AUDITED = {
    ActionKind.PURCHASE_UNLIMITED: audit.AuditAction.PURCHASE_UNLIMITED_AUTHENTICATION,
    ActionKind.ADD_LICENSES: audit.AuditAction.ADD_LICENSES_AUTHENTICATION,
    ActionKind.CHANGE_CARD: audit.AuditAction.CHANGE_CARD_AUTHENTICATION,
    ActionKind.CONVERT_YEARLY: audit.AuditAction.CONVERT_YEARLY_AUTHENTICATION,
}

MAX_LICENSES_PER_PURCHASE = 1000
MAX_FEEDBACK_CHARS = 2000
# A pending action older than this was cut short (a crash, a tab closed during 3-D Secure):
# it no longer blocks the account; its leftovers at Stripe are discarded by the next action.
STALE_PENDING_AFTER = timedelta(minutes=15)
# How old the proration instant of a preview may be when the customer confirms it.
PREVIEW_VALID_FOR = timedelta(minutes=30)

MSG_STALE_PAGE = N_(
    "Your subscription changed in another window. Review the new figures and confirm again."
)
MSG_ALREADY_YEARLY = N_("This subscription is already billed yearly.")
MSG_EXPIRED_FORM = N_("This form has expired. Please reload the page.")
MSG_PREVIEW_EXPIRED = N_(
    "The price shown has expired. Please review the new price and confirm again."
)
MSG_CANCELLING = N_("This subscription is set to cancel. Resume it first.")
MSG_SCHEDULED = N_(
    "A change is scheduled for your next renewal. Undo it first, then switch to yearly billing."
)


class BillingError(UserError):
    """A money action that cannot be done; the code says which rule or answer refused it. The
    message is already in the current locale (`_()` at the raise)."""

    def __init__(self, message: str, code: ErrorCode) -> None:
        super().__init__(message, code)


class StalePage(BillingError):
    """The page's figures are out of date: it reloads them before the customer confirms again."""


@dataclass(frozen=True)
class ActionResult:
    """How an action ended, or that it waits for the customer to confirm a payment.

    With `client_secret` set the page runs Stripe.js `confirmCardPayment` (with
    `payment_method_id` when given) and then calls the same action with `resume=True`.
    """

    message: str
    already_done: bool = False
    client_secret: str | None = None
    payment_method_id: str | None = None

    @property
    def awaits_customer(self) -> bool:
        return self.client_secret is not None


@dataclass(frozen=True)
class ChangePreview:
    """What a change costs: charged (or credited, when negative) now, and the new recurring amount.

    `proration_date` is the instant Stripe prorated from: the change is made with the
    same one, so the charge equals the preview to the cent.
    """

    charged_now_cents: int
    recurring_cents: int
    interval: Interval
    currency: str
    proration_date: int

    @property
    def charged_now(self) -> str:
        return format_money(abs(self.charged_now_cents), self.currency)

    @property
    def recurring(self) -> str:
        return recurring_amount(self.recurring_cents, self.currency, self.interval)

    @property
    def is_credit(self) -> bool:
        return self.charged_now_cents < 0


def recurring_amount(cents: int, currency: str, interval: str) -> str:
    """ "$80.00 per month", "960,00 $ pro Jahr"."""
    amount = format_money(cents, currency)
    if interval == Interval.YEAR:
        return _("%(amount)s per year") % {"amount": amount}
    return _("%(amount)s per month") % {"amount": amount}


def parse_license_count(value: Any, *, minimum: int = 1) -> int:
    """A whole number of licenses, `minimum`–1000; anything else is refused with a message."""
    text = str(value).strip() if value is not None else ""
    if not text.isdigit() or not minimum <= int(text) <= MAX_LICENSES_PER_PURCHASE:
        raise BillingError(
            _("Enter a whole number of licenses from %(minimum)s to %(maximum)s.")
            % {"minimum": minimum, "maximum": MAX_LICENSES_PER_PURCHASE},
            ErrorCode.INVALID_LICENSE_COUNT,
        )
    return int(text)


def license_count_error(value: Any, *, minimum: int = 1) -> str:
    """What is wrong with a typed license count, or "" (for a form's inline hint)."""
    try:
        parse_license_count(value, minimum=minimum)
    except BillingError as exc:
        return exc.message
    return ""


def action_key(kind: ActionKind, account_id: int, params: dict[str, Any]) -> str:
    """The action's identity: the same action with the same parameters has the same key."""
    canonical = json.dumps(
        {"kind": kind, "account": account_id, **params}, sort_keys=True, default=str
    )
    return f"{kind}:{hashlib.sha256(canonical.encode()).hexdigest()[:48]}"


# Outcomes of an action's work --------------------------------------------------------


@dataclass(frozen=True)
class _Changed:
    """Stripe applied the action: what to store, and the payment that paid for it."""

    subscription: SubscriptionSnapshot | None = None
    card: CardSummary | None = None
    payment: InvoicePayment | None = None
    # After a card change: the invoices still unpaid (None: the change touched no invoice).
    unpaid: tuple[InvoicePayment, ...] | None = None
    invoices_paid: int = 0
    details: BillingDetails | None = None


@dataclass(frozen=True)
class _AwaitingCustomer:
    payment: InvoicePayment
    payment_method_id: str | None = None


class _Failed(BillingError):
    """Stripe refused for good (a decline, a failed authentication): a retry is a new attempt."""


@dataclass
class _Action:
    """The claimed intent: its row, the Stripe key of this attempt and its recorded progress."""

    id: int
    key: str
    account: Account
    progress: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False

    @property
    def attempt(self) -> int:
        return int(self.progress.get("attempt", 1))

    @property
    def stripe_key(self) -> str:
        return f"{self.key}:{self.attempt}"


# The BillingAction statements, in Core (built once): they run on every action.
_actions = SQLModel.metadata.tables["billing_action"]
_ABANDON_STALE = (
    sa.update(_actions)
    .where(
        _actions.c.account_id == sa.bindparam("of_account"),
        _actions.c.status == ActionStatus.PENDING,
        _actions.c.created_at < sa.bindparam("cutoff"),
    )
    .values(status=ActionStatus.FAILED, message="abandoned", finished_at=sa.bindparam("now"))
)
_ACTION_BY_KEY = sa.select(
    _actions.c.id,
    _actions.c.account_id,
    _actions.c.kind,
    _actions.c.status,
    _actions.c.message,
    _actions.c.progress,
).where(_actions.c.idempotency_key == sa.bindparam("key"))
_INSERT_ACTION = sa.insert(_actions).returning(_actions.c.id)
_RETRY_ACTION = (
    sa.update(_actions)
    .where(_actions.c.id == sa.bindparam("action_id"))
    .values(
        status=ActionStatus.PENDING,
        message="",
        finished_at=None,
        created_at=sa.bindparam("now"),
        progress=sa.bindparam("new_progress"),
    )
)
_NOTE_PROGRESS = (
    sa.update(_actions)
    .where(_actions.c.id == sa.bindparam("action_id"))
    .values(progress=sa.bindparam("new_progress"))
)
_FINISH_ACTION = (
    sa.update(_actions)
    .where(_actions.c.id == sa.bindparam("action_id"))
    .values(
        status=sa.bindparam("new_status"),
        message=sa.bindparam("new_message"),
        finished_at=sa.bindparam("now"),
        progress=sa.bindparam("new_progress"),
    )
)
_accounts = SQLModel.metadata.tables["account"]
# Stores a Stripe read only when nothing read later has been stored (webhooks and actions race).
_CLAIM_SYNC = (
    sa.update(_accounts)
    .where(
        _accounts.c.id == sa.bindparam("account"),
        sa.or_(
            _accounts.c.stripe_synced_at.is_(None),
            _accounts.c.stripe_synced_at <= sa.bindparam("read_at"),
        ),
    )
    .values(stripe_synced_at=sa.bindparam("read_at"))
)

# Checks made in the action's first transaction, on the account as stored; raise BillingError.
Check = Callable[[Session, Account], None]
Work = Callable[[_Action], "_Changed | _AwaitingCustomer"]
Describe = Callable[[_Changed], str]


def _require_subscription(account: Account) -> None:
    if account.plan != Plan.UNLIMITED or not account.stripe_subscription_id:
        raise BillingError(
            _("This account has no Unlimited Version subscription."), ErrorCode.NO_SUBSCRIPTION
        )


def _require_renewing(account: Account) -> None:
    _require_subscription(account)
    if account.cancel_at is not None:
        raise BillingError(_(MSG_CANCELLING), ErrorCode.ALREADY_CANCELLING)


def _require_customer(_session: Session, account: Account) -> None:
    if not account.stripe_customer_id:
        raise BillingError(_("Start again: the card form has expired."), ErrorCode.EXPIRED_FORM)


def _charged(payment: InvoicePayment | None) -> str:
    if payment is not None and payment.amount_paid > 0:
        return " " + _("%(amount)s was charged to your card.") % {
            "amount": format_money(payment.amount_paid, payment.currency)
        }
    return ""


def _result_detail(result: _Changed) -> dict[str, Any]:
    """What the audit log keeps of an action's result: the amount charged, the card's brand and
    last 4 digits (never more of a card), the billing country and tax ID type."""
    detail: dict[str, Any] = {}
    if result.payment is not None and result.payment.amount_paid > 0:
        detail["charged_cents"] = result.payment.amount_paid
        detail["currency"] = result.payment.currency
    if result.card is not None:
        detail["card_brand"], detail["card_last4"] = result.card.brand, result.card.last4
    if result.details is not None:
        detail["country"] = result.details.country
        detail["tax_id_type"] = result.details.tax_id_type
    return detail


def _store_read(session: Session, account_id: int, read_at: datetime) -> bool:
    """Claim the right to store a Stripe state read at `read_at` (False: a later one is stored)."""
    return (
        session.connection()
        .execute(_CLAIM_SYNC, {"account": account_id, "read_at": read_at})
        .rowcount
        == 1
    )


class BillingService:
    def __init__(self, gateway: StripeClient, settings: Settings):
        self.gateway = gateway
        self.settings = settings
        self._catalogue: Catalogue | None = None

    # Reading ------------------------------------------------------------------

    def _load(self, account_id: int) -> Account:
        with session_scope() as session:
            account = session.get(Account, account_id)
            if account is None:
                raise BillingError(_(MSG_ACCOUNT_MISSING), ErrorCode.ACCOUNT_MISSING)
            return account

    def _subscribed(self, account_id: int) -> Account:
        account = self._load(account_id)
        _require_subscription(account)
        return account

    def _price_id(self, interval: Interval) -> str:
        # The Prices follow from the configured amounts; made sure of once per process
        # (if the start-up attempt failed, the first purchase does it).
        if self._catalogue is None:
            self._catalogue = self.gateway.ensure_catalogue()
        return self._catalogue.price_id(interval)

    def _unit_price(self, interval: Interval) -> int:
        s = self.settings
        return (
            s.billing_price_yearly_cents
            if interval == Interval.YEAR
            else s.billing_price_monthly_cents
        )

    @staticmethod
    def _now() -> int:
        return int(datetime.now(UTC).timestamp())

    def _preview(
        self,
        account: Account,
        *,
        price_of: Callable[[SubscriptionSnapshot], str],
        quantity_of: Callable[[SubscriptionSnapshot], int],
        unit_amount: int | None = None,
        interval: Interval | None = None,
    ) -> ChangePreview:
        subscription = self.gateway.retrieve_subscription(str(account.stripe_subscription_id))
        quantity = quantity_of(subscription)
        proration_date = self._now()
        preview = self.gateway.preview_change(
            subscription,
            price_id=price_of(subscription),
            quantity=quantity,
            proration_date=proration_date,
        )
        return ChangePreview(
            preview.amount_due,
            quantity * (unit_amount or subscription.unit_amount),
            interval or subscription.interval,
            preview.currency,
            proration_date,
        )

    def preview_additional_licenses(self, account_id: int, count: Any) -> ChangePreview:
        extra = parse_license_count(count)
        account = self._subscribed(account_id)
        return self._preview(
            account, price_of=lambda sub: sub.price_id, quantity_of=lambda sub: sub.quantity + extra
        )

    def preview_yearly(self, account_id: int) -> ChangePreview:
        account = self._subscribed(account_id)
        if account.billing_interval != Interval.MONTH:
            raise BillingError(_(MSG_ALREADY_YEARLY), ErrorCode.ALREADY_YEARLY)
        if account.scheduled_at is not None:
            # The switch restarts the billing cycle: the renewal the schedule waits for moves.
            raise BillingError(_(MSG_SCHEDULED), ErrorCode.CHANGE_SCHEDULED)
        yearly = self._price_id(Interval.YEAR)
        return self._preview(
            account,
            price_of=lambda _sub: yearly,
            quantity_of=lambda sub: sub.quantity,
            unit_amount=self._unit_price(Interval.YEAR),
            interval=Interval.YEAR,
        )

    def _valid_proration_date(self, value: Any) -> int:
        """The preview's proration instant, as the page sent it back: recent and not in the
        future."""
        try:
            proration_date = int(value)
        except (TypeError, ValueError) as exc:
            raise StalePage(_(MSG_PREVIEW_EXPIRED), ErrorCode.PREVIEW_EXPIRED) from exc
        now = self._now()
        if not now - PREVIEW_VALID_FOR.total_seconds() <= proration_date <= now + 5:
            raise StalePage(_(MSG_PREVIEW_EXPIRED), ErrorCode.PREVIEW_EXPIRED)
        return proration_date

    # The action frame -------------------------------------------------------------
    # Stripe is never called inside a database transaction. The intent (with the checks that
    # need the database) is one transaction, each step's progress one, Stripe's answer one.

    def _claim(
        self,
        account_id: int,
        kind: ActionKind,
        key: str,
        params: dict[str, Any],
        actor: str,
        check: Check,
        resume: bool,
    ) -> _Action | ActionResult:
        """The earlier outcome of this key; or else the checked account and the intent recorded."""
        with session_scope() as session:
            connection, now = session.connection(), utcnow()
            connection.execute(
                _ABANDON_STALE,
                {"of_account": account_id, "cutoff": now - STALE_PENDING_AFTER, "now": now},
            )
            existing = connection.execute(_ACTION_BY_KEY, {"key": key}).first()
            if existing is not None and (
                existing.account_id != account_id or existing.kind != kind
            ):
                raise BillingError(_(MSG_EXPIRED_FORM), ErrorCode.EXPIRED_FORM)
            if existing is not None and existing.status == ActionStatus.SUCCEEDED:
                return ActionResult(existing.message, already_done=True)  # a double click, a retry
            progress: dict[str, Any] = (
                json.loads(existing.progress or "{}") if existing is not None else {}
            )
            waiting = (
                existing is not None
                and existing.status == ActionStatus.PENDING
                and "awaiting" in progress
            )
            if existing is not None and existing.status == ActionStatus.PENDING and not waiting:
                raise BillingError(
                    _("This change is already being processed. Please wait."), ErrorCode.IN_PROGRESS
                )
            account = session.get(Account, account_id)
            if account is None:
                raise BillingError(_(MSG_ACCOUNT_MISSING), ErrorCode.ACCOUNT_MISSING)
            if existing is not None and waiting:
                # Back from the bank's confirmation (`resume`), or the same form sent again while
                # the bank waits (then the customer is asked again).
                return _Action(existing.id, key, account, progress, resumed=resume)
            if "sent" not in progress:
                # A retry of an attempt that reached Stripe is checked against Stripe by the work
                # itself: the local rows may already show what that attempt did.
                check(session, account)
            try:
                if existing is None:
                    progress = {"attempt": 1}
                    action_id = connection.execute(
                        _INSERT_ACTION,
                        {
                            "account_id": account_id,
                            "kind": kind,
                            "idempotency_key": key,
                            "status": ActionStatus.PENDING,
                            "params": json.dumps(params, sort_keys=True),
                            "message": "",
                            "actor": actor,
                            "created_at": now,
                            "progress": json.dumps(progress),
                        },
                    ).scalar_one()
                else:
                    # A retry of a failed attempt. After a definite refusal Stripe would replay
                    # that refusal for the same key: the next attempt gets keys of its own.
                    if progress.pop("refused", False):
                        progress["attempt"] = int(progress.get("attempt", 1)) + 1
                    action_id = existing.id
                    connection.execute(
                        _RETRY_ACTION,
                        {"action_id": action_id, "now": now, "new_progress": json.dumps(progress)},
                    )
            except IntegrityError as exc:  # another action of this account is pending
                raise BillingError(_(MSG_BUSY), ErrorCode.BUSY) from exc
            return _Action(action_id, key, account, progress)

    @staticmethod
    def _note(action: _Action, **progress: Any) -> None:
        """Record a step before (or right after) Stripe is asked to do it."""
        action.progress.update(progress)
        with session_scope() as session:
            session.connection().execute(
                _NOTE_PROGRESS,
                {"action_id": action.id, "new_progress": json.dumps(action.progress)},
            )

    @staticmethod
    def _finish(session: Session, action: _Action, status: str, message: str = "") -> None:
        session.connection().execute(
            _FINISH_ACTION,
            {
                "action_id": action.id,
                "new_status": status,
                "new_message": message[:500],
                "now": utcnow(),
                "new_progress": json.dumps(action.progress),
            },
        )

    def _fail(
        self,
        action: _Action,
        kind: ActionKind,
        actor: str,
        params: dict[str, Any],
        message: str,
        *,
        refused: bool,
    ) -> None:
        if refused:
            action.progress["refused"] = True
        with session_scope() as session:
            self._finish(session, action, ActionStatus.FAILED, message)
            audit.record(
                session,
                action=_AUDITED[kind],
                actor=actor,
                account_id=action.account.id,
                outcome=audit.AuditOutcome.ERROR,
                message=message,
                **params,
            )

    def _run(
        self,
        *,
        account_id: int,
        kind: ActionKind,
        params: dict[str, Any],
        actor: str,
        check: Check,
        work: Work,
        describe: Describe,
        resume: bool = False,
    ) -> ActionResult:
        key = action_key(kind, account_id, params)
        claimed = self._claim(account_id, kind, key, params, actor, check, resume)
        if isinstance(claimed, ActionResult):
            return claimed
        action = claimed
        try:
            result = work(action)
        except UserError as exc:
            refused = isinstance(exc, _Failed) or (
                isinstance(exc, GatewayError) and not exc.retryable
            )
            self._fail(action, kind, actor, params, exc.message, refused=refused)
            self._try_resync(account_id)
            raise
        except Exception:
            log.exception("billing action %s failed", kind)
            self._fail(action, kind, actor, params, "internal error", refused=False)
            raise
        if isinstance(result, _AwaitingCustomer):
            self._note(action, awaiting=result.payment.invoice_id)
            with session_scope() as session:
                audit.record(
                    session,
                    action=_AUTHENTICATION_AUDITED[kind],
                    actor=actor,
                    account_id=account_id,
                    invoice=result.payment.invoice_id,
                    **params,
                )
            return ActionResult(
                _("Please confirm the payment with your bank."),
                client_secret=result.payment.client_secret,
                payment_method_id=result.payment_method_id,
            )
        # Stripe's answer and the action's end in one transaction. The account read by the
        # claim is merged without a SELECT: only the fields Stripe's answer sets are written.
        message = describe(result)
        with session_scope() as session:
            account = session.merge(action.account, load=False)
            # Stripe's answer is as new as its arrival: a re-sync that read earlier loses.
            if _store_read(session, account_id, utcnow()):
                if result.subscription is not None:
                    apply_subscription(account, result.subscription)
                if result.card is not None:
                    apply_card(account, result.card)
                if result.unpaid is not None:
                    apply_payment_state(account, result.unpaid[-1] if result.unpaid else None)
                if result.details is not None:
                    store_details(account, result.details)
            self._finish(session, action, ActionStatus.SUCCEEDED, message)
            audit.record(
                session,
                action=_AUDITED[kind],
                actor=actor,
                account_id=account_id,
                outcome=audit.AuditOutcome.OK,
                message=message,
                **params,
                **_result_detail(result),
            )
        return ActionResult(message)

    # Changing the subscription (add licenses, yearly) -------------------------------

    def _change(
        self,
        action: _Action,
        *,
        target: Callable[[SubscriptionSnapshot], tuple[str, int]],
        proration_date: int,
        is_expected: Callable[[SubscriptionSnapshot], bool],
    ) -> _Changed | _AwaitingCustomer:
        """Move the subscription to the target (price, quantity), paid at once, resuming what was
        done."""
        gateway, key = self.gateway, action.stripe_key
        subscription = gateway.retrieve_subscription(str(action.account.stripe_subscription_id))
        price_id, quantity = target(subscription)
        if (subscription.price_id, subscription.quantity) == (
            price_id,
            quantity,
        ) and "sent" in action.progress:
            # Applied by an earlier attempt whose answer was lost, or once authenticated.
            invoice_id = action.progress.get("invoice")
            return _Changed(
                subscription, payment=gateway.invoice_payment(invoice_id) if invoice_id else None
            )
        pending = subscription.pending_update
        if pending is not None and subscription.latest_invoice_id:
            payment = gateway.invoice_payment(subscription.latest_invoice_id)
            if (pending.price_id, pending.quantity) == (
                price_id,
                quantity,
            ) and "sent" in action.progress:
                return self._settle_change(action, subscription, payment)
            # Left by an abandoned action: discarding it (voiding its invoice) comes first.
            gateway.void_invoice(payment.invoice_id, idempotency_key=key)
            subscription = gateway.retrieve_subscription(subscription.id)
        if not is_expected(subscription):
            raise StalePage(_(MSG_STALE_PAGE), ErrorCode.STALE_PAGE)
        self._note(action, sent=action.attempt)
        changed, payment = gateway.change_subscription(
            subscription,
            price_id=price_id,
            quantity=quantity,
            proration_date=proration_date,
            idempotency_key=key,
        )
        if payment is not None:
            self._note(action, invoice=payment.invoice_id)
        if changed.pending_update is None:
            return _Changed(changed, payment=payment)
        if payment is None:
            raise GatewayError(
                N_("The payment service kept the change pending without an invoice."),
                code="unexpected_response",
            )
        return self._settle_change(action, changed, payment)

    def _settle_change(
        self, action: _Action, subscription: SubscriptionSnapshot, payment: InvoicePayment
    ) -> _Changed | _AwaitingCustomer:
        """A change waiting for its invoice: ask the customer, or discard it when the payment
        failed."""
        if payment.paid:  # paid meanwhile: Stripe has applied it
            return _Changed(self.gateway.retrieve_subscription(subscription.id), payment=payment)
        if payment.needs_customer and not action.resumed:
            return _AwaitingCustomer(payment)
        # Declined, or the customer's authentication failed or was abandoned: the pending
        # update is discarded with its invoice, so nothing is left open or granted.
        message = payment.failure_message if payment.failed else _(MSG_AUTHENTICATION_FAILED)
        self.gateway.void_invoice(payment.invoice_id, idempotency_key=action.stripe_key)
        raise _Failed(
            _("%(reason)s Nothing was changed.") % {"reason": message}, ErrorCode.PAYMENT_FAILED
        )

    def add_licenses(
        self,
        account_id: int,
        count: Any,
        *,
        expected_licenses: int,
        proration_date: Any,
        actor: str,
        resume: bool = False,
    ) -> ActionResult:
        extra = parse_license_count(count)
        expected = int(expected_licenses)
        when = self._valid_proration_date(proration_date)
        account = self._subscribed(account_id)

        def check(_session: Session, stored: Account) -> None:
            _require_subscription(stored)
            if stored.licenses_purchased != expected:
                raise StalePage(_(MSG_STALE_PAGE), ErrorCode.STALE_PAGE)

        def work(action: _Action) -> _Changed | _AwaitingCustomer:
            # The subscription keeps its own price (a customer keeps the price they bought at).
            result = self._change(
                action,
                target=lambda sub: (sub.price_id, expected + extra),
                proration_date=when,
                is_expected=lambda sub: sub.quantity == expected,
            )
            if isinstance(result, _Changed):
                return self._keep_added_at_renewal(action, result, extra)
            return result

        return self._run(
            account_id=account_id,
            kind=ActionKind.ADD_LICENSES,
            actor=actor,
            check=check,
            work=work,
            resume=resume,
            params={
                "licenses": extra,
                "from": expected,
                "subscription": account.stripe_subscription_id,
                "proration_date": when,
            },
            describe=lambda done: (
                ngettext(
                    "Added %(count)s license: you now have %(total)s.",
                    "Added %(count)s licenses: you now have %(total)s.",
                    extra,
                )
                % {"count": extra, "total": expected + extra}
                + _charged(done.payment)
            ),
        )

    def convert_to_yearly(
        self, account_id: int, *, proration_date: Any, actor: str, resume: bool = False
    ) -> ActionResult:
        when = self._valid_proration_date(proration_date)
        account = self._subscribed(account_id)
        yearly = self._price_id(Interval.YEAR)

        def check(_session: Session, stored: Account) -> None:
            _require_subscription(stored)
            if stored.billing_interval != Interval.MONTH:
                raise BillingError(_(MSG_ALREADY_YEARLY), ErrorCode.ALREADY_YEARLY)
            if stored.scheduled_at is not None:
                raise BillingError(_(MSG_SCHEDULED), ErrorCode.CHANGE_SCHEDULED)

        def work(action: _Action) -> _Changed | _AwaitingCustomer:
            return self._change(
                action,
                target=lambda sub: (yearly, sub.quantity),
                proration_date=when,
                is_expected=lambda sub: sub.interval == Interval.MONTH,
            )

        return self._run(
            account_id=account_id,
            kind=ActionKind.CONVERT_YEARLY,
            actor=actor,
            check=check,
            work=work,
            resume=resume,
            params={"subscription": account.stripe_subscription_id, "proration_date": when},
            describe=lambda done: (
                _("Your subscription is now billed yearly.") + _charged(done.payment)
            ),
        )

    # Cards ------------------------------------------------------------------------------

    def start_card_setup(self, account_id: int) -> str:
        """A new SetupIntent's client secret for Stripe.js; creates the Stripe customer on first
        use.

        Each card form (and each retry after a failure) gets its own SetupIntent: one that
        succeeded cannot be confirmed again.
        """
        return self.gateway.create_setup_intent(
            self._ensure_customer(account_id, actor="system"),
            idempotency_key=f"setup:{uuid.uuid4().hex}",
        )

    def _ensure_customer(self, account_id: int, *, actor: str) -> str:
        """The account's Stripe customer, created on first use (one per account: the key names
        the account)."""
        account = self._load(account_id)
        if account.stripe_customer_id:
            return account.stripe_customer_id
        customer_id = self.gateway.create_customer(
            name=account.name,
            email=account.admin_email,
            account_ref=account.slug,
            idempotency_key=f"customer:{account.id}:{int(account.created_at.timestamp())}",
        )
        with session_scope() as session:
            stored = session.get(Account, account_id)
            if stored is None:
                raise BillingError(_(MSG_ACCOUNT_MISSING), ErrorCode.ACCOUNT_MISSING)
            stored.stripe_customer_id = customer_id
            audit.record(
                session,
                action=audit.AuditAction.CREATE_CUSTOMER,
                actor=actor,
                account_id=account_id,
                customer=customer_id,
            )
        return customer_id

    def _confirmed_card(self, setup_secret: str) -> str:
        if (
            not isinstance(setup_secret, str)
            or "_secret_" not in setup_secret
            or len(setup_secret) > 200
        ):
            raise BillingError(
                _("The card was not confirmed. Please enter it again."),
                ErrorCode.CARD_NOT_CONFIRMED,
            )
        payment_method = self.gateway.setup_intent_payment_method(setup_secret)
        if not payment_method:
            raise BillingError(
                _("The card was not confirmed. Please enter it again."),
                ErrorCode.CARD_NOT_CONFIRMED,
            )
        return payment_method

    def save_card(
        self, account_id: int, setup_secret: str, *, actor: str, resume: bool = False
    ) -> ActionResult:
        """Make the card collected by Stripe.js the default and pay the open invoices with it,
        oldest first (the bank may ask the customer to authenticate each)."""

        def work(action: _Action) -> _Changed | _AwaitingCustomer:
            account, key = action.account, action.stripe_key
            payment_method = self._confirmed_card(setup_secret)
            live_subscription = (
                account.stripe_subscription_id if account.plan == Plan.UNLIMITED else None
            )
            card = self.gateway.attach_default_card(
                str(account.stripe_customer_id),
                payment_method,
                idempotency_key=key,
                subscription_id=live_subscription,
            )
            attempted: list[str] = list(action.progress.get("paid_with_card", []))
            unpaid: list[InvoicePayment] = []
            for invoice in self._unpaid_invoices(account):
                if invoice.invoice_id in attempted:  # asked once already: only read where it stands
                    if not invoice.paid:
                        unpaid.append(invoice)
                    continue
                self._note(action, paid_with_card=[*attempted, invoice.invoice_id])
                attempted.append(invoice.invoice_id)
                payment = self.gateway.pay_invoice(
                    invoice.invoice_id,
                    idempotency_key=key,
                    payment_method_id=payment_method,
                    on_session=True,
                )
                if payment.needs_customer:
                    return _AwaitingCustomer(payment, payment_method)
                if not payment.paid:
                    unpaid.append(payment)
            # Paying an invoice may have brought the subscription back from past_due.
            subscription = (
                self.gateway.retrieve_subscription(live_subscription)
                if attempted and live_subscription
                else None
            )
            return _Changed(
                subscription,
                card=card,
                unpaid=tuple(unpaid),
                invoices_paid=len(attempted) - len(unpaid),
            )

        def describe(done: _Changed) -> str:
            assert done.card is not None
            message = _("Card saved: %(card)s.") % {
                "card": card_label(done.card.brand, done.card.last4)
            }
            if done.unpaid:
                return (
                    message
                    + " "
                    + _("But the open invoice could not be paid with it; try another card.")
                )
            if done.invoices_paid:
                return message + " " + _("The open invoice is paid.")
            return message

        return self._run(
            account_id=account_id,
            kind=ActionKind.CHANGE_CARD,
            actor=actor,
            check=_require_customer,
            work=work,
            describe=describe,
            resume=resume,
            params={"setup_intent": _intent_of(setup_secret)},
        )

    def _unpaid_invoices(self, account: Account) -> list[InvoicePayment]:
        """Open invoices to pay after a card change, oldest first; not an invoice that pays a
        pending update (paying it would make a change the customer abandoned)."""
        customer = str(account.stripe_customer_id)
        skip: str | None = None
        if account.stripe_subscription_id:
            subscription = self.gateway.retrieve_subscription(account.stripe_subscription_id)
            if subscription.pending_update is not None:
                skip = subscription.latest_invoice_id
        return [inv for inv in self.gateway.open_invoices(customer) if inv.invoice_id != skip]

    # Billing Details ------------------------------------------------------------------------

    def billing_details_form(self, account_id: int) -> BillingDetails:
        """What the Billing Details form starts with (the saved details, else the account's)."""
        return form_defaults(self._load(account_id))

    def save_billing_details(
        self, account_id: int, form: Mapping[str, object], *, form_id: str, actor: str
    ) -> ActionResult:
        """Save the details at Stripe (customer name, email, address, tax ID), then the copy.

        Refused input changes nothing anywhere. The key covers the values and the dialog's id:
        the same values sent twice are saved once, other values (or a later dialog) again.
        """
        try:
            details = parse_details(form)
        except InvalidDetails as exc:
            with session_scope() as session:
                audit.record(
                    session,
                    action=audit.AuditAction.BILLING_DETAILS,
                    actor=actor,
                    account_id=account_id,
                    outcome=audit.AuditOutcome.ERROR,
                    message=exc.message,
                )
            raise
        form_key = _form_id(form_id)
        self._ensure_customer(account_id, actor=actor)

        def work(action: _Action) -> _Changed:
            return _Changed(
                details=self.gateway.save_billing_details(
                    str(action.account.stripe_customer_id),
                    details,
                    idempotency_key=action.stripe_key,
                )
            )

        digest = hashlib.sha256(repr(details).encode()).hexdigest()[:16]
        return self._run(
            account_id=account_id,
            kind=ActionKind.BILLING_DETAILS,
            actor=actor,
            check=_require_customer,
            work=work,
            params={
                "form": form_key,
                "details": digest,
            },
            describe=lambda _done: _("Billing details saved. New invoices will show them."),
        )

    # The first purchase ---------------------------------------------------------------

    def purchase_unlimited(
        self,
        account_id: int,
        *,
        licenses: Any,
        interval: Any,
        setup_secret: str,
        actor: str,
        resume: bool = False,
    ) -> ActionResult:
        quantity = parse_license_count(licenses)
        if interval not in tuple(Interval):
            raise BillingError(_("Choose monthly or yearly billing."), ErrorCode.INVALID_INTERVAL)
        interval = Interval(interval)

        def check(session: Session, account: Account) -> None:
            if account.plan == Plan.UNLIMITED:
                raise BillingError(
                    _("This account already has the Unlimited Version."),
                    ErrorCode.ALREADY_UNLIMITED,
                )
            _require_customer(session, account)
            # Every user already using the connector needs a license.
            parse_license_count(quantity, minimum=max(licenses_used(session, account_id), 1))

        def work(action: _Action) -> _Changed | _AwaitingCustomer:
            customer, key = str(action.account.stripe_customer_id), action.stripe_key
            price_id = self._price_id(interval)
            payment_method = self._confirmed_card(setup_secret)
            # A subscription made by an earlier attempt (its answer lost, or waiting for the
            # customer's authentication) is finished, never made a second time.
            for subscription in self.gateway.customer_subscriptions(customer):
                if subscription.status in LIVE_STATUSES:
                    return _Changed(subscription, card=self.gateway.default_card(customer))
                if subscription.status != "incomplete":
                    continue
                # Ours even when the answer to the create was lost: it names this action.
                ours = (
                    subscription.created_by == action.key
                    or subscription.id == action.progress.get("subscription")
                )
                if ours and subscription.latest_invoice_id:
                    payment = self.gateway.invoice_payment(subscription.latest_invoice_id)
                    if payment.paid:
                        return _Changed(
                            self.gateway.retrieve_subscription(subscription.id),
                            card=self.gateway.default_card(customer),
                            payment=payment,
                        )
                    if payment.needs_customer and not action.resumed:
                        return _AwaitingCustomer(payment, payment_method)
                    self.gateway.discard_incomplete(subscription.id, idempotency_key=key)
                    message = (
                        payment.failure_message if payment.failed else _(MSG_AUTHENTICATION_FAILED)
                    )
                    raise _Failed(
                        _("%(reason)s Nothing was charged.") % {"reason": message},
                        ErrorCode.PAYMENT_FAILED,
                    )
                # An abandoned attempt's subscription (its first payment never made).
                self.gateway.discard_incomplete(subscription.id, idempotency_key=key)
            card = self.gateway.attach_default_card(customer, payment_method, idempotency_key=key)
            self._note(action, sent=action.attempt)
            subscription, payment = self.gateway.create_subscription(
                customer,
                price_id,
                quantity,
                payment_method_id=payment_method,
                created_by=action.key,
                idempotency_key=key,
            )
            self._note(action, subscription=subscription.id, invoice=payment.invoice_id)
            if payment.paid:
                return _Changed(subscription, card=card, payment=payment)
            return _AwaitingCustomer(payment, payment_method)

        return self._run(
            account_id=account_id,
            kind=ActionKind.PURCHASE_UNLIMITED,
            actor=actor,
            check=check,
            work=work,
            resume=resume,
            params={
                "licenses": quantity,
                "interval": interval,
                "setup_intent": _intent_of(setup_secret),
            },
            describe=lambda done: (
                (
                    ngettext(
                        "Welcome to the Unlimited Version: %(count)s license, billed yearly.",
                        "Welcome to the Unlimited Version: %(count)s licenses, billed yearly.",
                        quantity,
                    )
                    if interval == Interval.YEAR
                    else ngettext(
                        "Welcome to the Unlimited Version: %(count)s license, billed monthly.",
                        "Welcome to the Unlimited Version: %(count)s licenses, billed monthly.",
                        quantity,
                    )
                )
                % {"count": quantity}
            ),
        )

    # Cancelling and resuming ----------------------------------------------------------

    def cancel(
        self, account_id: int, *, reason: Any, additional_features: Any, form: str, actor: str
    ) -> ActionResult:
        reason_text = str(reason or "").strip()
        features_text = str(additional_features or "").strip()
        if not reason_text:
            raise BillingError(
                _("Please enter a reason for cancelling."), ErrorCode.INVALID_FEEDBACK
            )
        if len(reason_text) > MAX_FEEDBACK_CHARS or len(features_text) > MAX_FEEDBACK_CHARS:
            raise BillingError(
                _("Please keep each answer under %(count)s characters.")
                % {"count": MAX_FEEDBACK_CHARS},
                ErrorCode.INVALID_FEEDBACK,
            )
        comment = f"Reason: {reason_text}" + (
            f"\nAdditional features: {features_text}" if features_text else ""
        )

        def check(session: Session, account: Account) -> None:
            _require_subscription(account)
            if account.cancel_at is not None:
                raise BillingError(
                    _("This subscription is already set to cancel."), ErrorCode.ALREADY_CANCELLING
                )
            # The feedback is committed with the intent: it is kept whatever Stripe answers next.
            session.add(
                CancellationFeedback(
                    account_id=account_id,
                    reason=reason_text,
                    additional_features=features_text,
                    actor=actor,
                )
            )
            audit.record(
                session,
                action=audit.AuditAction.CANCEL_FEEDBACK,
                actor=actor,
                account_id=account_id,
            )

        def work(action: _Action) -> _Changed:
            # Stripe refuses a cancellation on a scheduled subscription: the schedule goes first.
            subscription = self.gateway.retrieve_subscription(
                str(action.account.stripe_subscription_id)
            )
            if subscription.schedule_id is not None:
                self.gateway.release_schedule(subscription, idempotency_key=action.stripe_key)
            return _Changed(
                self.gateway.set_cancel_at_period_end(
                    str(action.account.stripe_subscription_id),
                    True,
                    comment=comment,
                    idempotency_key=action.stripe_key,
                )
            )

        def describe(done: _Changed) -> str:
            assert done.subscription is not None
            end = done.subscription.cancel_at or done.subscription.current_period_end
            return _("Your subscription will end on %(date)s. You can resume it until then.") % {
                "date": format_date(end)
            }

        return self._run(
            account_id=account_id,
            kind=ActionKind.CANCEL,
            actor=actor,
            params={"form": _form_id(form)},
            check=check,
            work=work,
            describe=describe,
        )

    def resume(self, account_id: int, *, form: str, actor: str) -> ActionResult:
        def check(_session: Session, account: Account) -> None:
            _require_subscription(account)
            if account.cancel_at is None:
                raise BillingError(
                    _("This subscription is not set to cancel."), ErrorCode.NOT_CANCELLING
                )

        def work(action: _Action) -> _Changed:
            return _Changed(
                self.gateway.set_cancel_at_period_end(
                    str(action.account.stripe_subscription_id),
                    False,
                    idempotency_key=action.stripe_key,
                )
            )

        return self._run(
            account_id=account_id,
            kind=ActionKind.RESUME,
            actor=actor,
            params={"form": _form_id(form)},
            check=check,
            work=work,
            describe=lambda _done: _("Your subscription continues. Nothing else changed."),
        )

    # Changes at the next renewal (fewer licenses, monthly billing) ----------------------------
    # Scheduled at Stripe (a subscription schedule's second phase), never applied now: the
    # current period is not prorated, and the renewal bills the new terms in full.

    def _keep_added_at_renewal(self, action: _Action, done: _Changed, extra: int) -> _Changed:
        """Licenses bought while fewer are scheduled are kept at the renewal too: the scheduled
        count rises by the purchase, and the schedule's phase in progress takes the new count."""
        subscription = done.subscription
        if subscription is None or subscription.scheduled is None:
            return done
        scheduled = subscription.scheduled
        # Recorded first: a retry must not add the purchase to the scheduled count twice.
        target = int(action.progress.get("rescheduled") or scheduled.quantity + extra)
        self._note(action, rescheduled=target)
        changed = self.gateway.schedule_renewal_change(
            subscription,
            price_id=scheduled.price_id,
            interval=scheduled.interval,
            quantity=target,
            idempotency_key=action.stripe_key,
        )
        return _Changed(changed, payment=done.payment)

    def _schedule(
        self,
        action: _Action,
        *,
        target: Callable[[SubscriptionSnapshot], tuple[str, Interval, int]],
        is_expected: Callable[[SubscriptionSnapshot], bool],
    ) -> _Changed:
        """Schedule (price, interval, quantity) for the renewal, or drop the schedule when that is
        what the subscription bills now; nothing is sent when Stripe already has it."""
        gateway, key = self.gateway, action.stripe_key
        subscription = gateway.retrieve_subscription(str(action.account.stripe_subscription_id))
        if not is_expected(subscription):
            raise StalePage(_(MSG_STALE_PAGE), ErrorCode.STALE_PAGE)
        price_id, interval, quantity = target(subscription)
        scheduled = subscription.scheduled
        if (price_id, quantity) == (subscription.price_id, subscription.quantity):
            if subscription.schedule_id is None:
                return _Changed(subscription)
            return _Changed(gateway.release_schedule(subscription, idempotency_key=key))
        if scheduled is not None and (scheduled.price_id, scheduled.quantity) == (
            price_id,
            quantity,
        ):
            return _Changed(subscription)
        self._note(action, sent=action.attempt)
        return _Changed(
            gateway.schedule_renewal_change(
                subscription,
                price_id=price_id,
                interval=interval,
                quantity=quantity,
                idempotency_key=key,
            )
        )

    @staticmethod
    def _renewal_terms(subscription: SubscriptionSnapshot) -> tuple[str, Interval, int]:
        """(price, interval, quantity) the renewal bills as scheduled now."""
        scheduled = subscription.scheduled
        if scheduled is None:
            return subscription.price_id, subscription.interval, subscription.quantity
        return scheduled.price_id, scheduled.interval, scheduled.quantity

    def reduce_licenses(
        self, account_id: int, licenses: Any, *, form: str, actor: str
    ) -> ActionResult:
        """Bill fewer licenses from the next renewal on (never fewer than the users holding one)."""
        quantity = parse_license_count(licenses)

        def check(session: Session, stored: Account) -> None:
            _require_renewing(stored)
            if quantity >= stored.licenses_purchased:
                raise BillingError(
                    _("Choose fewer licenses than the %(count)s you have now.")
                    % {"count": stored.licenses_purchased},
                    ErrorCode.NOT_FEWER_LICENSES,
                )
            used = licenses_used(session, account_id)
            if quantity < used:
                remove = used - quantity
                raise BillingError(
                    ngettext(
                        "%(used)s users hold a license now. Remove %(remove)s user in User "
                        "Management first, or keep at least %(used)s licenses.",
                        "%(used)s users hold a license now. Remove %(remove)s users in User "
                        "Management first, or keep at least %(used)s licenses.",
                        remove,
                    )
                    % {"used": used, "remove": remove},
                    ErrorCode.LICENSES_IN_USE,
                )

        def work(action: _Action) -> _Changed:
            return self._schedule(
                action,
                target=lambda sub: (*self._renewal_terms(sub)[:2], quantity),
                is_expected=lambda sub: sub.quantity > quantity,
            )

        def describe(done: _Changed) -> str:
            assert done.subscription is not None
            end = format_date(done.subscription.current_period_end)
            return ngettext(
                "From your renewal on %(date)s you will have %(count)s license.",
                "From your renewal on %(date)s you will have %(count)s licenses.",
                quantity,
            ) % {"date": end, "count": quantity}

        return self._run(
            account_id=account_id,
            kind=ActionKind.REDUCE_LICENSES,
            actor=actor,
            params={"licenses": quantity, "form": _form_id(form)},
            check=check,
            work=work,
            describe=describe,
        )

    def switch_to_monthly(self, account_id: int, *, form: str, actor: str) -> ActionResult:
        """Bill monthly from the next (yearly) renewal on."""
        monthly = self._price_id(Interval.MONTH)

        def check(_session: Session, stored: Account) -> None:
            _require_renewing(stored)
            if stored.billing_interval != Interval.YEAR:
                raise BillingError(
                    _("This subscription is already billed monthly."), ErrorCode.ALREADY_MONTHLY
                )
            if stored.scheduled_interval == Interval.MONTH:
                raise BillingError(
                    _("The switch to monthly billing is already scheduled."),
                    ErrorCode.CHANGE_SCHEDULED,
                )

        def work(action: _Action) -> _Changed:
            return self._schedule(
                action,
                target=lambda sub: (monthly, Interval.MONTH, self._renewal_terms(sub)[2]),
                is_expected=lambda sub: sub.interval == Interval.YEAR,
            )

        def describe(done: _Changed) -> str:
            assert done.subscription is not None
            end = format_date(done.subscription.current_period_end)
            return _("Your subscription switches to monthly billing on %(date)s.") % {"date": end}

        return self._run(
            account_id=account_id,
            kind=ActionKind.SWITCH_MONTHLY,
            actor=actor,
            params={"form": _form_id(form)},
            check=check,
            work=work,
            describe=describe,
        )

    def keep_current_licenses(self, account_id: int, *, form: str, actor: str) -> ActionResult:
        """Undo a scheduled reduction: the renewal keeps today's licenses (a scheduled switch to
        monthly stays)."""
        return self._keep_current(
            account_id,
            kind=ActionKind.KEEP_LICENSES,
            form=form,
            actor=actor,
            scheduled=lambda stored: (
                stored.scheduled_licenses not in (None, stored.licenses_purchased)
            ),
            target=lambda sub: (*self._renewal_terms(sub)[:2], sub.quantity),
            messages=(
                N_("No change of licenses is scheduled."),
                N_("Your licenses stay as they are at the renewal."),
            ),
        )

    def keep_yearly_billing(self, account_id: int, *, form: str, actor: str) -> ActionResult:
        """Undo a scheduled switch to monthly (a scheduled reduction stays)."""
        return self._keep_current(
            account_id,
            kind=ActionKind.KEEP_YEARLY,
            form=form,
            actor=actor,
            scheduled=lambda stored: (
                stored.scheduled_interval not in (None, stored.billing_interval)
            ),
            target=lambda sub: (sub.price_id, sub.interval, self._renewal_terms(sub)[2]),
            messages=(
                N_("No switch to monthly billing is scheduled."),
                N_("Your subscription stays billed yearly."),
            ),
        )

    def _keep_current(
        self,
        account_id: int,
        *,
        kind: ActionKind,
        form: str,
        actor: str,
        scheduled: Callable[[Account], bool],
        target: Callable[[SubscriptionSnapshot], tuple[str, Interval, int]],
        messages: tuple[str, str],
    ) -> ActionResult:
        """Undo one scheduled change (`messages`, `N_()` constants: when there is none, and when
        it is undone)."""
        nothing_scheduled, undone = messages

        def check(_session: Session, stored: Account) -> None:
            _require_subscription(stored)
            if not scheduled(stored):
                raise BillingError(_(nothing_scheduled), ErrorCode.NOTHING_SCHEDULED)

        return self._run(
            account_id=account_id,
            kind=kind,
            actor=actor,
            params={"form": _form_id(form)},
            check=check,
            work=lambda action: self._schedule(
                action, target=target, is_expected=lambda _sub: True
            ),
            describe=lambda _done: _(undone),
        )

    # A renewal waiting for the customer's authentication ---------------------------------------

    def unpaid_payment_secret(self, account_id: int) -> str:
        """The confirmation secret of the unpaid invoice whose bank asks for authentication."""
        account = self._load(account_id)
        if not account.unpaid_invoice_id:
            raise BillingError(
                _("There is no payment to authenticate."), ErrorCode.NOTHING_TO_AUTHENTICATE
            )
        payment = self.gateway.invoice_payment(account.unpaid_invoice_id)
        if not payment.needs_customer or payment.client_secret is None:
            self._try_resync(account_id)
            raise StalePage(
                _("This payment does not need authentication any more."),
                ErrorCode.NOTHING_TO_AUTHENTICATE,
            )
        return payment.client_secret

    def after_authentication(self, account_id: int, *, actor: str) -> str:
        """Re-read Stripe after the customer authenticated (or not) the unpaid invoice's payment."""
        account = self._load(account_id)
        invoice_id = account.unpaid_invoice_id
        self.resync(account_id)
        paid = self._load(account_id).unpaid_invoice_id is None
        with session_scope() as session:
            audit.record(
                session,
                action=audit.AuditAction.AUTHENTICATE_PAYMENT,
                actor=actor,
                account_id=account_id,
                outcome=audit.AuditOutcome.OK if paid else audit.AuditOutcome.ERROR,
                invoice=invoice_id,
            )
        if not paid:
            raise BillingError(
                _(MSG_AUTHENTICATION_FAILED) + " " + _("You can try again or use another card."),
                ErrorCode.AUTHENTICATION_FAILED,
            )
        return _("Thank you: the payment is confirmed.")

    # Re-sync (webhooks) -------------------------------------------------------------

    def _try_resync(self, account_id: int) -> None:
        # After a failure (a timeout may still have been applied), show what Stripe holds.
        try:
            self.resync(account_id)
        except GatewayError as exc:
            log.info("re-sync after a failed action skipped: %s", exc.code)

    def resync(
        self, account_id: int, subscription_id: str | None = None, *, actor: str | None = None
    ) -> list[BillingChange]:
        """The reconcile pass: re-read subscription, customer (card, billing details) and unpaid
        invoice from Stripe, store them, and return what differed from the local rows (users
        exceeding licenses included).

        It only reads Stripe: never a charge, never a user removed. `subscription_id` (from a
        webhook) is adopted when the account has no live one. Two re-syncs racing never leave the
        older read stored last. With an `actor` (a webhook, the operator's reconcile), each change
        is audited as done by it; the page's own actions audit themselves.
        """
        read_at = utcnow()
        account = self._load(account_id)
        if not account.stripe_customer_id:
            return []
        subscription_id = (
            (account.stripe_subscription_id if account.plan == Plan.UNLIMITED else None)
            or subscription_id
            or account.stripe_subscription_id
        )
        subscription = (
            self.gateway.retrieve_subscription(subscription_id) if subscription_id else None
        )
        customer = self.gateway.retrieve_customer(account.stripe_customer_id)
        unpaid = [
            inv
            for inv in self.gateway.open_invoices(account.stripe_customer_id)
            if subscription is None
            or subscription.pending_update is None
            or inv.invoice_id != subscription.latest_invoice_id
        ]
        paid = self._paid_since(account, unpaid) if actor else frozenset()
        with session_scope() as session:
            if not _store_read(session, account_id, read_at):
                return []
            stored = session.get(Account, account_id)
            if stored is None:
                return []
            before = billing_facts(stored, licenses_used(session, account_id))
            if subscription is not None and (
                subscription.status != "incomplete" or stored.plan != Plan.UNLIMITED
            ):
                apply_subscription(stored, subscription)
            apply_card(stored, customer.card)
            if customer.details is not None:
                store_details(stored, customer.details)
            apply_payment_state(stored, unpaid[-1] if unpaid else None)
            session.add(stored)
            changes = stripe_changes(before, billing_facts(stored, before.users), paid)
            if actor is None:
                return changes
            for change in changes:
                audit.record(
                    session,
                    action=change.action,
                    actor=actor,
                    account_id=account_id,
                    outcome=audit.AuditOutcome.OK if change.ok else audit.AuditOutcome.ERROR,
                    **change.detail,
                )
        return changes

    def _paid_since(self, account: Account, unpaid: list[InvoicePayment]) -> frozenset[str]:
        """The account's unpaid invoice, when Stripe no longer lists it open because it is paid."""
        invoice_id = account.unpaid_invoice_id
        if invoice_id is None or any(inv.invoice_id == invoice_id for inv in unpaid):
            return frozenset()
        paid = self.gateway.invoice_payment(invoice_id).paid
        return frozenset({invoice_id}) if paid else frozenset()


def _intent_of(client_secret: Any) -> str:
    """The SetupIntent id of a client secret (the card form's identity)."""
    return str(client_secret).split("_secret_", 1)[0][:80]


def _form_id(form: Any) -> str:
    text = str(form or "")
    if not 8 <= len(text) <= 64 or not text.isalnum():
        raise BillingError(_(MSG_EXPIRED_FORM), ErrorCode.EXPIRED_FORM)
    return text
