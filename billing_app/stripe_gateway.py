"""The one module that talks to Stripe (or to the embedded localstripe).

Everything outside sees frozen dataclasses and `GatewayError`, never a Stripe
object or a raw Stripe exception. Only call shapes accepted by both real Stripe
(API version `STRIPE_API_VERSION`) and localstripe are used; the choices this
forces are listed in docs/stripe-compat.md.

Responses are read as plain dicts that may come in two shapes: localstripe
answers like the pre-2025 API (`current_period_*` on the subscription, `plan`
and `proration` on lines), real Stripe like the current one (periods on the
subscription items, `price`/`pricing` and `parent.*_details.proration`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

import httpx
import requests
import stripe

from billing_app.settings import Settings

log = logging.getLogger(__name__)

# Pinned so that a newer SDK never silently changes the shapes we parse.
STRIPE_API_VERSION = "2026-10-28.endive"
PRODUCT_ID = "unlimited-version"
PRODUCT_NAME = "Unlimited Version"
_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
_PROBE_TIMEOUT = 3.0

Interval = Literal["month", "year"]

MSG_DECLINED = "Your card was declined."
MSG_UNREACHABLE = "Payment service unreachable, nothing was changed. Please try again."
MSG_TIMEOUT = "The payment service took too long to answer. Please try again in a moment."
MSG_BUSY = "The payment service is busy, nothing was changed. Please try again in a moment."
MSG_SERVICE_ERROR = "The payment service had a problem. Please try again."
MSG_REFUSED = "The payment service refused this request. Nothing was changed."
MSG_NOT_FOUND = "This billing record was not found at the payment service."
MSG_MISCONFIGURED = "Payments are not configured correctly. Please contact support."
MSG_REPLAYED = "This request was already sent with different details. Please reload the page."

# Stripe card error codes and decline codes (https://docs.stripe.com/declines/codes).
_CARD_MESSAGES = {
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_number": "The card number is incorrect.",
    "invalid_number": "The card number is incorrect.",
    "incorrect_cvc": "The card's security code is incorrect.",
    "invalid_cvc": "The card's security code is incorrect.",
    "invalid_expiry_month": "The card's expiration date is invalid.",
    "invalid_expiry_year": "The card's expiration date is invalid.",
    "incorrect_zip": "The card's postal code is incorrect.",
    "authentication_required": "Your bank asks to verify this card. Please use another card.",
    "processing_error": "Your card could not be processed. Please try again.",
    "card_declined": MSG_DECLINED,
}
_CARD_FAILURE_CODES = frozenset(_CARD_MESSAGES)


class GatewayError(Exception):
    """A Stripe failure, reduced to what a user may be shown.

    `code` is Stripe's error/decline code when there is one, else one of ours
    (`unreachable`, `timeout`, `rate_limited`, `resource_missing`,
    `resource_already_exists`, `api_error`, ...). `retryable` means the same
    request may succeed if simply sent again (with the same idempotency key).
    """

    def __init__(self, user_message: str, *, code: str | None = None,
                 retryable: bool = False) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code
        self.retryable = retryable


def user_message_for(exc: stripe.StripeError) -> GatewayError:
    """Map a Stripe exception to a GatewayError; the details only go to the log."""
    code: str | None = exc.code
    status = exc.http_status
    decline = exc.error.decline_code if exc.error is not None else None

    if isinstance(exc, stripe.CardError) or (
        isinstance(exc, stripe.InvalidRequestError) and code in _CARD_MESSAGES
    ):
        log.info("Stripe card error: %r code=%s decline_code=%s", exc, code, decline)
        key = next((c for c in (decline, code) if c in _CARD_MESSAGES), "card_declined")
        return GatewayError(_CARD_MESSAGES[key], code=key,
                            retryable=key == "processing_error")

    if isinstance(exc, stripe.InvalidRequestError):  # often expected (a 404 probe)
        log.info("Stripe refused a request: %r code=%s", exc, code)
        if status == 404 or code == "resource_missing":
            return GatewayError(MSG_NOT_FOUND, code="resource_missing")
        return GatewayError(MSG_REFUSED, code=code or "invalid_request")

    if status == 409 and code is None and isinstance(exc, stripe.APIError):
        # localstripe answers a duplicate id with a bare 409 (real Stripe: 400
        # resource_already_exists; its own 409s, lock timeouts, carry a code).
        log.info("Stripe object already exists: %r", exc)
        return GatewayError(MSG_REFUSED, code="resource_already_exists")

    log.warning("Stripe call failed: %r code=%s", exc, code)
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, requests.exceptions.ReadTimeout):
            # The request may have been applied: do not claim nothing changed.
            return GatewayError(MSG_TIMEOUT, code="timeout", retryable=True)
        return GatewayError(MSG_UNREACHABLE, code="unreachable", retryable=True)
    if isinstance(exc, stripe.RateLimitError):
        return GatewayError(MSG_BUSY, code="rate_limited", retryable=True)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return GatewayError(MSG_MISCONFIGURED, code="authentication_error")
    if isinstance(exc, stripe.IdempotencyError):
        return GatewayError(MSG_REPLAYED, code="idempotency_error")
    if status == 409:
        return GatewayError(MSG_BUSY, code=code, retryable=True)
    if status is not None and status < 500:  # e.g. a non-JSON 404 from localstripe
        return GatewayError(MSG_REFUSED, code=code or f"http_{status}")
    return GatewayError(MSG_SERVICE_ERROR, code=code or "api_error", retryable=True)


# Plain results -------------------------------------------------------------

@dataclass(frozen=True)
class Catalogue:
    product_id: str
    monthly_plan_id: str
    yearly_plan_id: str


@dataclass(frozen=True)
class CardSummary:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class SubscriptionSnapshot:
    id: str
    customer_id: str
    status: str
    item_id: str
    plan_id: str
    interval: Interval
    quantity: int
    unit_amount: int
    currency: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    latest_invoice_id: str | None = None


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    quantity: int
    unit_amount: int  # amount / quantity, rounded: prorated lines are not at list price
    amount: int
    period_start: datetime | None
    period_end: datetime | None
    proration: bool


@dataclass(frozen=True)
class InvoiceSummary:
    id: str
    number: str | None
    created: datetime
    period_start: datetime | None
    period_end: datetime | None
    status: str
    currency: str
    subtotal: int
    tax: int
    total: int
    amount_paid: int
    amount_due: int
    lines: tuple[InvoiceLine, ...]
    # The buyer's billing address and tax ids as Stripe froze them on the invoice.
    customer_address: tuple[str, ...] = ()
    customer_tax_ids: tuple[str, ...] = ()

    @property
    def amount_remaining(self) -> int:
        """What is still to pay (Stripe keeps `amount_due` at the full amount once paid)."""
        return max(self.amount_due - self.amount_paid, 0)


@dataclass(frozen=True)
class InvoicePage:
    invoices: list[InvoiceSummary]  # newest first
    has_more: bool
    # Stripe's own last id of the page: the cursor for the next one, which
    # differs from invoices[-1] when localstripe's order had to be corrected.
    next_cursor: str | None


@dataclass(frozen=True)
class InvoicePreview:
    """What a change would invoice now (prorations, may be negative: a credit)."""

    amount_due: int
    total: int
    currency: str
    lines: tuple[InvoiceLine, ...]
    # What is invoiced at once: the lines of the current period. Real Stripe's preview
    # also lists the next period's renewal, which starts at the current period's end.
    charged_now: int


def plan_id_for(interval: Interval, amount: int, currency: str) -> str:
    """Deterministic plan id: a price change makes a new plan, never edits one."""
    return f"unlimited-{interval}-{amount}-{currency.lower()}"


# Parsing (both API shapes) ------------------------------------------------

def _dt(timestamp: Any) -> datetime | None:
    if timestamp in (None, ""):
        return None
    return datetime.fromtimestamp(int(timestamp), tz=UTC).replace(tzinfo=None)


def _id(ref: Any) -> str | None:
    """An id from a field that is either an id or an expanded object."""
    return ref.get("id") if isinstance(ref, dict) else ref


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _unexpected(what: str) -> GatewayError:
    log.error("Unexpected Stripe response: %s", what)
    return GatewayError(MSG_SERVICE_ERROR, code="unexpected_response")


def _card_from(pm: dict[str, Any]) -> CardSummary | None:
    card = pm.get("card")
    if not card:
        return None
    return CardSummary(payment_method_id=pm["id"], brand=str(card.get("brand") or "card"),
                       last4=str(card.get("last4") or ""), exp_month=int(card["exp_month"]),
                       exp_year=int(card["exp_year"]))


def _subscription_from(sub: dict[str, Any]) -> SubscriptionSnapshot:
    items = (sub.get("items") or {}).get("data") or []
    if not items:
        raise _unexpected(f"subscription {sub.get('id')} has no items")
    item = items[0]
    plan = item.get("plan") or {}
    price = item.get("price") or {}
    interval = plan.get("interval") or (price.get("recurring") or {}).get("interval")
    if interval not in ("month", "year"):
        raise _unexpected(f"subscription {sub.get('id')} interval {interval!r}")
    return SubscriptionSnapshot(
        id=sub["id"],
        customer_id=str(_id(sub.get("customer"))),
        status=sub["status"],
        item_id=item["id"],
        plan_id=plan.get("id") or price["id"],
        interval=interval,
        quantity=int(_first(item.get("quantity"), sub.get("quantity"), 1)),
        unit_amount=int(_first(plan.get("amount"), price.get("unit_amount"), 0)),
        currency=str(plan.get("currency") or price.get("currency") or sub.get("currency")),
        current_period_start=_dt(_first(item.get("current_period_start"),
                                        sub.get("current_period_start"))),
        current_period_end=_dt(_first(item.get("current_period_end"),
                                      sub.get("current_period_end"))),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        cancel_at=_dt(sub.get("cancel_at")),
        latest_invoice_id=_id(sub.get("latest_invoice")),
    )


def _line_from(line: dict[str, Any]) -> InvoiceLine:
    amount = int(line.get("amount") or 0)
    quantity = int(line.get("quantity") or 1)
    parent = line.get("parent") or {}
    details = (parent.get("subscription_item_details")
               or parent.get("invoice_item_details") or {})
    period = line.get("period") or {}
    return InvoiceLine(
        description=str(line.get("description") or ""),
        quantity=quantity,
        unit_amount=int((Decimal(amount) / quantity).to_integral_value()),
        amount=amount,
        period_start=_dt(period.get("start")),
        period_end=_dt(period.get("end")),
        proration=bool(_first(line.get("proration"), details.get("proration"), False)),
    )


def _tax(inv: dict[str, Any]) -> int:
    if inv.get("tax") is not None:  # pre-2025 shape, localstripe
        return int(inv["tax"])
    taxes = inv.get("total_taxes") or inv.get("total_tax_amounts") or []
    return sum(int(t.get("amount") or 0) for t in taxes)


def _address_lines(address: dict[str, Any] | None) -> tuple[str, ...]:
    if not address:
        return ()
    locality = " ".join(str(address[k]) for k in ("postal_code", "city", "state") if address.get(k))
    lines = (address.get("line1"), address.get("line2"), locality, address.get("country"))
    return tuple(str(line) for line in lines if line)


def _invoice_from(inv: dict[str, Any], raw_lines: list[dict[str, Any]] | None = None
                  ) -> InvoiceSummary:
    if raw_lines is None:
        raw_lines = (inv.get("lines") or {}).get("data") or []
    lines = tuple(_line_from(line) for line in raw_lines)
    # The invoice's own period_* is Stripe's "usage period" (for a first invoice:
    # created..created); the service period a user expects is on the lines.
    starts = [line.period_start for line in lines if line.period_start]
    ends = [line.period_end for line in lines if line.period_end]
    return InvoiceSummary(
        id=inv["id"],
        number=inv.get("number") or None,
        created=_dt(inv["created"]) or datetime.min,
        period_start=min(starts) if starts else _dt(inv.get("period_start")),
        period_end=max(ends) if ends else _dt(inv.get("period_end")),
        status=str(inv.get("status")),
        currency=str(inv.get("currency")),
        subtotal=int(inv.get("subtotal") or 0),
        tax=_tax(inv),
        total=int(inv.get("total") or 0),
        amount_paid=int(inv.get("amount_paid") or 0),
        amount_due=int(inv.get("amount_due") or 0),
        lines=lines,
        customer_address=_address_lines(inv.get("customer_address")),
        customer_tax_ids=tuple(str(t["value"]) for t in inv.get("customer_tax_ids") or []
                               if t.get("value")),
    )


def _options(idempotency_key: str, step: str | None = None) -> dict[str, str]:
    # One user action may take several writes; each needs its own key, or real
    # Stripe would answer the second with the first one's cached response.
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("idempotency_key must be 1-200 characters")
    return {"idempotency_key": f"{idempotency_key}:{step}" if step else idempotency_key}


# The client ------------------------------------------------------------------

class StripeClient:
    """Billing operations against Stripe or localstripe, chosen by `settings`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._api_base = settings.stripe_api_base
        self._stripe = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses={"api": self._api_base},
            stripe_version=STRIPE_API_VERSION,
            # Real Stripe replays a retried write from its idempotency key;
            # localstripe ignores the key, so a retry there could write twice.
            max_network_retries=0 if settings.test_mode else 1,
            http_client=stripe.RequestsClient(timeout=_TIMEOUT),
        )
        self._v1 = self._stripe.v1

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One SDK call, its result as plain dicts; any Stripe error as GatewayError."""
        try:
            result = fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise user_message_for(exc) from exc
        data: dict[str, Any] = result.to_dict()
        return data

    # Catalogue ---------------------------------------------------------------

    def ensure_catalogue(self) -> Catalogue:
        """Create (once) the product and its monthly and yearly per-license plans."""
        s = self._settings
        self._ensure(self._v1.products, PRODUCT_ID, {"id": PRODUCT_ID, "name": PRODUCT_NAME})
        monthly = self._ensure_plan("month", s.billing_price_monthly_cents, s.billing_currency)
        yearly = self._ensure_plan("year", s.billing_price_yearly_cents, s.billing_currency)
        return Catalogue(PRODUCT_ID, monthly, yearly)

    def _ensure_plan(self, interval: Interval, amount: int, currency: str) -> str:
        plan_id = plan_id_for(interval, amount, currency)
        plan = self._ensure(self._v1.plans, plan_id, {
            "id": plan_id, "product": PRODUCT_ID, "amount": amount, "currency": currency,
            "interval": interval, "usage_type": "licensed",
            "nickname": f"{PRODUCT_NAME} ({interval}ly)",
        })
        found = (plan.get("amount"), plan.get("currency"), plan.get("interval"),
                 _id(plan.get("product")), plan.get("usage_type"), plan.get("active"))
        if found != (amount, currency, interval, PRODUCT_ID, "licensed", True):
            log.error("Stripe plan %s does not match the settings: %s", plan_id, found)
            raise GatewayError(MSG_MISCONFIGURED, code="catalogue_mismatch")
        return plan_id

    def _ensure(self, service: Any, object_id: str, params: dict[str, Any]) -> dict[str, Any]:
        # No idempotency key needed: the fixed id makes a second create fail.
        try:
            return self._call(service.retrieve, object_id)
        except GatewayError as err:
            if err.code != "resource_missing":
                raise
        try:
            return self._call(service.create, params=params)
        except GatewayError as err:
            if err.code != "resource_already_exists":
                raise
        return self._call(service.retrieve, object_id)  # a concurrent creator won

    # Customers and cards -----------------------------------------------------

    def create_customer(self, *, name: str, email: str, account_ref: str,
                        idempotency_key: str) -> str:
        customer = self._call(self._v1.customers.create, params={
            "name": name, "email": email, "metadata": {"account_ref": account_ref},
        }, options=_options(idempotency_key))
        return str(customer["id"])

    def customer_exists(self, customer_id: str) -> bool:
        try:
            customer = self._call(self._v1.customers.retrieve, customer_id)
        except GatewayError as err:
            if err.code == "resource_missing":
                return False
            raise
        return not customer.get("deleted", False)

    def attach_default_card(self, customer_id: str, payment_method_id: str, *,
                            idempotency_key: str) -> CardSummary:
        """Attach a card (created by Stripe.js) and make it the customer's default."""
        pm = self._call(self._v1.payment_methods.retrieve, payment_method_id)
        if pm.get("type") != "card":
            raise GatewayError("Only cards are accepted.", code="unsupported_payment_method")
        # Already attached by a SetupIntent made for this customer, or by a retry.
        if _id(pm.get("customer")) != customer_id:
            pm = self._call(self._v1.payment_methods.attach, payment_method_id,
                            params={"customer": customer_id},
                            options=_options(idempotency_key, "attach"))
        self._call(self._v1.customers.update, customer_id,
                   params={"invoice_settings": {"default_payment_method": pm["id"]}},
                   options=_options(idempotency_key, "default"))
        card = _card_from(pm)
        if card is None:
            raise _unexpected(f"payment method {pm['id']} has no card")
        return card

    def default_card(self, customer_id: str) -> CardSummary | None:
        customer = self._call(self._v1.customers.retrieve, customer_id)
        if customer.get("deleted"):
            return None
        ref = (customer.get("invoice_settings") or {}).get("default_payment_method")
        if not ref:
            return None
        pm = ref if isinstance(ref, dict) else self._call(self._v1.payment_methods.retrieve, ref)
        return _card_from(pm)

    # Subscriptions -------------------------------------------------------------

    def create_subscription(self, customer_id: str, plan_id: str, quantity: int, *,
                            idempotency_key: str) -> SubscriptionSnapshot:
        """Subscribe and charge the first invoice now; a failed payment leaves nothing."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        sub = self._call(self._v1.subscriptions.create, params={
            "customer": customer_id,
            "items": [{"plan": plan_id, "quantity": quantity}],
            # Real Stripe: a failed first payment is a CardError, no subscription.
            "payment_behavior": "error_if_incomplete",
        }, options=_options(idempotency_key))
        if sub.get("status") == "incomplete":
            # localstripe accepts error_if_incomplete but still returns an
            # incomplete subscription with an open invoice: undo both.
            self._discard_incomplete(sub, idempotency_key)
            raise GatewayError(MSG_DECLINED, code="card_declined")
        return _subscription_from(sub)

    def _discard_incomplete(self, sub: dict[str, Any], idempotency_key: str) -> None:
        try:
            invoice_id = _id(sub.get("latest_invoice"))
            if invoice_id:
                invoice = self._call(self._v1.invoices.retrieve, invoice_id)
                if invoice.get("status") == "open":
                    self._call(self._v1.invoices.void_invoice, invoice_id,
                               options=_options(idempotency_key, "void"))
            self._call(self._v1.subscriptions.cancel, sub["id"],
                       options=_options(idempotency_key, "cancel"))
        except GatewayError:
            log.exception("Could not clean up incomplete subscription %s", sub["id"])

    def retrieve_subscription(self, subscription_id: str) -> SubscriptionSnapshot:
        return _subscription_from(self._call(self._v1.subscriptions.retrieve, subscription_id))

    # Invoices ------------------------------------------------------------------

    def list_invoices(self, customer_id: str, *, limit: int = 25,
                      starting_after: str | None = None
                      ) -> tuple[list[InvoiceSummary], bool]:
        """One page of the customer's invoices, newest first, and whether more follow."""
        page = self.invoice_page(customer_id, limit=limit, starting_after=starting_after)
        return page.invoices, page.has_more

    def invoice_page(self, customer_id: str, *, limit: int = 25,
                     starting_after: str | None = None) -> InvoicePage:
        """One page of the customer's invoices, newest first, with the next page's cursor."""
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        params: dict[str, Any] = {"customer": customer_id, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = self._call(self._v1.invoices.list, params=params)
        data = page.get("data") or []
        invoices = [_invoice_from(inv) for inv in data]
        # localstripe orders by its `date` (a period boundary), not by creation.
        invoices.sort(key=lambda inv: inv.created, reverse=True)
        return InvoicePage(invoices, bool(page.get("has_more")),
                           str(data[-1]["id"]) if data else None)

    def retrieve_invoice(self, invoice_id: str, *, customer_id: str | None = None
                         ) -> InvoiceSummary:
        """The invoice with all its lines. With `customer_id`, another customer's
        invoice is reported as missing (GatewayError code `resource_missing`)."""
        inv = self._call(self._v1.invoices.retrieve, invoice_id)
        if customer_id is not None and _id(inv.get("customer")) != customer_id:
            raise GatewayError(MSG_NOT_FOUND, code="resource_missing")
        page = inv.get("lines") or {}
        lines = list(page.get("data") or [])
        while page.get("has_more") and lines:
            page = self._call(self._v1.invoices.line_items.list, invoice_id,
                              params={"limit": 100, "starting_after": lines[-1]["id"]})
            lines.extend(page.get("data") or [])
        return _invoice_from(inv, lines)

    def change_subscription(self, subscription: SubscriptionSnapshot, *, plan_id: str, quantity: int,
                            idempotency_key: str) -> SubscriptionSnapshot:
        """Set the plan and quantity of the subscription's one item (Stripe prorates by default).

        `plan` is sent, never `price`: localstripe ignores `price` on modify.
        """
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        sub = self._call(self._v1.subscriptions.update, subscription.id, params={
            "items": [{"id": subscription.item_id, "plan": plan_id, "quantity": quantity}],
        }, options=_options(idempotency_key, "modify"))
        return _subscription_from(sub)

    def preview_change(self, subscription: SubscriptionSnapshot, *, plan_id: str,
                       quantity: int) -> InvoicePreview:
        """What `change_subscription` with these values would invoice now."""
        inv = self._call(self._v1.invoices.create_preview, params={
            "customer": subscription.customer_id,
            "subscription": subscription.id,
            "subscription_details": {
                "items": [{"id": subscription.item_id, "plan": plan_id, "quantity": quantity}],
            },
        })
        lines = tuple(_line_from(line) for line in (inv.get("lines") or {}).get("data") or [])
        period_end = subscription.current_period_end
        charged_now = sum(
            line.amount for line in lines
            if period_end is None or line.period_start is None or line.period_start < period_end
        )
        return InvoicePreview(amount_due=int(inv.get("amount_due") or 0), total=int(inv.get("total") or 0),
                              currency=str(inv.get("currency")), lines=lines, charged_now=charged_now)

    def invoice_now(self, subscription: SubscriptionSnapshot, *, idempotency_key: str) -> InvoiceSummary | None:
        """Invoice the pending prorations of a change and try to pay them at once.

        Returns the invoice (status "paid" or "open" when the card failed: localstripe
        answers a failed payment with 200, real Stripe with a CardError, both end
        here as an open invoice), or None when nothing was pending.
        """
        try:
            inv = self._call(self._v1.invoices.create, params={
                "customer": subscription.customer_id,
                "subscription": subscription.id,
                "pending_invoice_items_behavior": "include",
            }, options=_options(idempotency_key, "invoice"))
        except GatewayError as err:
            if err.code == "invoice_no_customer_line_items":
                return None
            raise
        return self.pay_invoice(inv["id"], idempotency_key=idempotency_key)

    def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> InvoiceSummary:
        """Try to pay a draft or open invoice with the default card; a decline leaves it open."""
        invoice = self.retrieve_invoice(invoice_id)
        if invoice.status not in ("draft", "open"):
            return invoice
        try:
            self._call(self._v1.invoices.pay, invoice_id, options=_options(idempotency_key, "pay"))
        except GatewayError as err:
            if err.code not in _CARD_FAILURE_CODES:
                raise
        return self.retrieve_invoice(invoice_id)

    def open_invoice(self, customer_id: str) -> InvoiceSummary | None:
        """The newest unpaid (open) invoice, if any (localstripe cannot filter by status)."""
        invoices, _ = self.list_invoices(customer_id, limit=10)
        return next((inv for inv in invoices if inv.status == "open"), None)

    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool, *,
                                 idempotency_key: str) -> SubscriptionSnapshot:
        sub = self._call(self._v1.subscriptions.update, subscription_id,
                         params={"cancel_at_period_end": cancel},
                         options=_options(idempotency_key, "cancel" if cancel else "resume"))
        return _subscription_from(sub)

    def create_setup_intent(self, customer_id: str, *, idempotency_key: str) -> str:
        """A SetupIntent for Stripe.js `confirmCardSetup`; returns its client secret."""
        intent = self._call(self._v1.setup_intents.create, params={
            "customer": customer_id, "usage": "off_session", "payment_method_types": ["card"],
        }, options=_options(idempotency_key, "setup"))
        return str(intent["client_secret"])

    def setup_intent_payment_method(self, client_secret: str) -> str | None:
        """The card a confirmed SetupIntent collected (None unless it succeeded)."""
        intent_id = client_secret.split("_secret_", 1)[0]
        intent = self._call(self._v1.setup_intents.retrieve, intent_id)
        if intent.get("status") != "succeeded":
            return None
        return _id(intent.get("payment_method"))

    def construct_event(self, payload: bytes, signature: str) -> dict[str, Any]:
        """Verify a webhook delivery's signature; raise ValueError if it is not Stripe's."""
        try:
            event = stripe.Webhook.construct_event(payload, signature, self._settings.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise ValueError("invalid webhook signature or payload") from exc
        return event.to_dict()

    # Test mode and health --------------------------------------------------------

    def register_test_webhook(self, url: str, secret: str, endpoint_id: str = "billing-app",
                              events: Sequence[str] | None = None) -> None:
        """Tell localstripe where to send events (its `/_config` API; lost on restart)."""
        if not self._settings.test_mode:
            raise RuntimeError("real Stripe webhook endpoints are set up in the Dashboard")
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook url must be http(s)")
        data: dict[str, Any] = {"url": url, "secret": secret}
        if events:
            data["events[]"] = list(events)
        try:
            endpoint = f"{self._api_base}/_config/webhooks/{quote(endpoint_id, safe='')}"
            response = httpx.post(endpoint, data=data, timeout=_PROBE_TIMEOUT)
        except httpx.HTTPError as exc:
            log.warning("Could not register the test webhook: %r", exc)
            raise GatewayError(MSG_UNREACHABLE, code="unreachable", retryable=True) from exc
        if not response.is_success:
            log.warning("localstripe refused the webhook: %s %s", response.status_code,
                        response.text[:200])
            raise GatewayError(MSG_REFUSED, code=f"http_{response.status_code}")

    def is_reachable(self) -> bool:
        """True if the API answers an authenticated request within a few seconds."""
        try:
            response = httpx.get(
                f"{self._api_base}/v1/products", params={"limit": 1}, timeout=_PROBE_TIMEOUT,
                headers={"Authorization": f"Bearer {self._settings.stripe_api_key}",
                         "Stripe-Version": STRIPE_API_VERSION},
            )
        except httpx.HTTPError:
            return False
        return response.is_success
