"""The one module that talks to Stripe (or to the embedded emulator, localstripe extended).

Everything outside sees frozen dataclasses and `GatewayError`, never a Stripe
object or a raw Stripe exception. Every call is written for real Stripe (API
version `STRIPE_API_VERSION`) with the SDK's typed request params, so a misspelt
or removed parameter fails the type checker; the emulator (`stripe_emulator.py`)
is taught whatever of that behaviour localstripe lacks. docs/stripe-compat.md
names the Stripe behaviour each flow relies on.

Responses are read as plain dicts that may come in two shapes: localstripe
answers partly like the pre-2025 API (`current_period_*` on the subscription,
`plan` and `proration` on lines), real Stripe like the current one (periods on
the subscription items, `price`/`pricing` and `parent.*_details.proration`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

import httpx
import requests
import stripe
from stripe.params import (
    InvoiceCreatePreviewParams,
    InvoiceListParams,
    InvoicePayParams,
    PriceCreateParams,
    SubscriptionCancelParams,
    SubscriptionCreateParams,
    SubscriptionUpdateParams,
)

from billing_app.settings import Settings

log = logging.getLogger(__name__)

# Pinned so that a newer SDK never silently changes the shapes we parse.
STRIPE_API_VERSION = "2026-10-28.endive"
PRODUCT_ID = "unlimited-version"
PRODUCT_NAME = "Unlimited Version"
LOOKUP_KEYS = {"month": "connector_unlimited_monthly", "year": "connector_unlimited_yearly"}
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
MSG_AUTHENTICATION_FAILED = "Your bank could not verify this payment. Nothing was charged."

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
    "authentication_required": "Your bank asks you to confirm this payment.",
    "payment_intent_authentication_failure": MSG_AUTHENTICATION_FAILED,
    "processing_error": "Your card could not be processed. Please try again.",
    "card_declined": MSG_DECLINED,
}
# Stripe's answer when an invoice's payment needs the customer (3-D Secure): not a failure.
ACTION_REQUIRED_CODES = frozenset({
    "invoice_payment_intent_requires_action", "subscription_payment_intent_requires_action",
    "authentication_required",
})


class GatewayError(Exception):
    """A Stripe failure, reduced to what a user may be shown.

    `code` is Stripe's error/decline code when there is one, else one of ours
    (`unreachable`, `timeout`, `rate_limited`, `resource_missing`,
    `resource_already_exists`, `api_error`, ...). `retryable` means the same
    request may succeed if simply sent again (with the same idempotency key);
    `outcome_unknown` means Stripe may have applied it (a timeout, a 5xx).
    """

    def __init__(self, user_message: str, *, code: str | None = None,
                 retryable: bool = False, outcome_unknown: bool = False) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown


def card_message(code: str | None) -> str:
    """The user's words for a card error or decline code (a generic decline otherwise)."""
    return _CARD_MESSAGES.get(code or "", MSG_DECLINED)


def user_message_for(exc: stripe.StripeError) -> GatewayError:
    """Map a Stripe exception to a GatewayError; the details only go to the log."""
    code: str | None = exc.code
    status = exc.http_status
    decline = exc.error.decline_code if exc.error is not None else None

    if code in ACTION_REQUIRED_CODES:
        log.info("Stripe asks for authentication: %r code=%s", exc, code)
        return GatewayError(card_message("authentication_required"), code="authentication_required")

    if isinstance(exc, stripe.CardError) or (
        isinstance(exc, stripe.InvalidRequestError) and code in _CARD_MESSAGES
    ):
        log.info("Stripe card error: %r code=%s decline_code=%s", exc, code, decline)
        key = next((c for c in (decline, code) if c in _CARD_MESSAGES), "card_declined")
        return GatewayError(_CARD_MESSAGES[key], code=key, retryable=key == "processing_error")

    if isinstance(exc, stripe.IdempotencyError):
        log.warning("Stripe refused a reused idempotency key: %r", exc)
        return GatewayError(MSG_REPLAYED, code="idempotency_error")

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
            return GatewayError(MSG_TIMEOUT, code="timeout", retryable=True, outcome_unknown=True)
        return GatewayError(MSG_UNREACHABLE, code="unreachable", retryable=True)
    if isinstance(exc, stripe.RateLimitError):
        return GatewayError(MSG_BUSY, code="rate_limited", retryable=True)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return GatewayError(MSG_MISCONFIGURED, code="authentication_error")
    if status == 409:
        return GatewayError(MSG_BUSY, code=code, retryable=True)
    if status is not None and status < 500:  # e.g. a non-JSON 404 from localstripe
        return GatewayError(MSG_REFUSED, code=code or f"http_{status}")
    return GatewayError(MSG_SERVICE_ERROR, code=code or "api_error", retryable=True,
                        outcome_unknown=True)


# Plain results -------------------------------------------------------------

@dataclass(frozen=True)
class Catalogue:
    product_id: str
    monthly_price_id: str
    yearly_price_id: str

    def price_id(self, interval: str) -> str:
        return self.yearly_price_id if interval == "year" else self.monthly_price_id


@dataclass(frozen=True)
class CardSummary:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class PendingUpdate:
    """A change Stripe keeps until its invoice is paid (Billing › Pending updates)."""

    price_id: str | None
    quantity: int | None


@dataclass(frozen=True)
class SubscriptionSnapshot:
    id: str
    customer_id: str
    status: str
    item_id: str
    price_id: str
    interval: Interval
    quantity: int
    unit_amount: int
    currency: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    latest_invoice_id: str | None = None
    pending_update: PendingUpdate | None = None
    default_payment_method: str | None = None
    # The billing action that created it (metadata): a retry recognises its own subscription.
    created_by: str | None = None


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
    """What a change would invoice at once (`amount_due`: after tax, discounts and balance)."""

    amount_due: int
    total: int
    currency: str
    lines: tuple[InvoiceLine, ...]


@dataclass(frozen=True)
class InvoicePayment:
    """Where an invoice's payment stands, and what the browser needs to finish it.

    `client_secret` is the invoice's confirmation secret (its PaymentIntent's),
    meant for Stripe.js `confirmCardPayment` on the page.
    """

    invoice_id: str
    invoice_status: str  # draft | open | paid | void | uncollectible
    amount_due: int
    amount_paid: int
    currency: str
    intent_status: str | None = None
    client_secret: str | None = None
    error_code: str | None = None

    @property
    def paid(self) -> bool:
        return self.invoice_status == "paid"

    @property
    def needs_customer(self) -> bool:
        """The customer must confirm (3-D Secure, or a first payment left for the page)."""
        return self.invoice_status == "open" and self.intent_status in (
            "requires_action", "requires_confirmation") and self.client_secret is not None

    @property
    def failed(self) -> bool:
        """Declined or not authenticated: open with a payment error, or voided."""
        return self.invoice_status in ("void", "uncollectible") or (
            self.invoice_status == "open" and self.intent_status == "requires_payment_method"
            and self.error_code is not None)

    @property
    def failure_message(self) -> str:
        return card_message(self.error_code)


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


def _price_of(item: dict[str, Any]) -> tuple[str | None, str | None, int | None, str | None]:
    """(price id, interval, unit amount, currency) of a subscription item, either shape."""
    raw_price, raw_plan = item.get("price"), item.get("plan")
    price: dict[str, Any] = raw_price if isinstance(raw_price, dict) else {}
    plan: dict[str, Any] = raw_plan if isinstance(raw_plan, dict) else {}
    price_id = price.get("id") or (raw_price if isinstance(raw_price, str) else None) or plan.get("id")
    interval = (price.get("recurring") or {}).get("interval") or plan.get("interval")
    amount = _first(price.get("unit_amount"), plan.get("amount"))
    currency = price.get("currency") or plan.get("currency")
    return price_id, interval, amount, currency


def _pending_update_from(raw: Any) -> PendingUpdate | None:
    if not isinstance(raw, dict):
        return None
    items = raw.get("subscription_items") or []
    if not items:
        return PendingUpdate(None, None)
    item = items[0]
    price_id, _, _, _ = _price_of(item)
    quantity = item.get("quantity")
    return PendingUpdate(price_id, int(quantity) if quantity is not None else None)


def _subscription_from(sub: dict[str, Any]) -> SubscriptionSnapshot:
    items = (sub.get("items") or {}).get("data") or []
    if not items:
        raise _unexpected(f"subscription {sub.get('id')} has no items")
    item = items[0]
    price_id, interval, amount, currency = _price_of(item)
    if interval not in ("month", "year") or not price_id:
        raise _unexpected(f"subscription {sub.get('id')} interval {interval!r}")
    return SubscriptionSnapshot(
        id=sub["id"],
        customer_id=str(_id(sub.get("customer"))),
        status=sub["status"],
        item_id=item["id"],
        price_id=price_id,
        interval=interval,
        quantity=int(_first(item.get("quantity"), sub.get("quantity"), 1)),
        unit_amount=int(amount or 0),
        currency=str(currency or sub.get("currency")),
        current_period_start=_dt(_first(item.get("current_period_start"),
                                        sub.get("current_period_start"))),
        current_period_end=_dt(_first(item.get("current_period_end"),
                                      sub.get("current_period_end"))),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        cancel_at=_dt(sub.get("cancel_at")),
        latest_invoice_id=_id(sub.get("latest_invoice")),
        pending_update=_pending_update_from(sub.get("pending_update")),
        default_payment_method=_id(sub.get("default_payment_method")),
        created_by=(sub.get("metadata") or {}).get("billing_action"),
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
        proration=bool(_first(details.get("proration"), line.get("proration"), False)),
    )


def _tax(inv: dict[str, Any]) -> int:
    if inv.get("total_taxes") is not None:
        return sum(int(t.get("amount") or 0) for t in inv["total_taxes"])
    if inv.get("tax") is not None:  # pre-2025 shape, localstripe
        return int(inv["tax"])
    return sum(int(t.get("amount") or 0) for t in inv.get("total_tax_amounts") or [])


def _address_lines(address: dict[str, Any] | None) -> tuple[str, ...]:
    if not address:
        return ()
    locality = " ".join(str(address[k]) for k in ("postal_code", "city", "state") if address.get(k))
    lines = (address.get("line1"), address.get("line2"), locality, address.get("country"))
    return tuple(str(line) for line in lines if line)


def _invoice_from(inv: dict[str, Any], raw_lines: list[dict[str, Any]] | None = None
                  ) -> InvoiceSummary:
    if raw_lines is None:
        raw_lines = list((inv.get("lines") or {}).get("data") or [])
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


def _intent_id(client_secret: str) -> str:
    return client_secret.split("_secret_", 1)[0]


def _payment_from(inv: dict[str, Any], intent: dict[str, Any] | None) -> InvoicePayment:
    secret = (inv.get("confirmation_secret") or {}).get("client_secret")
    error = (intent or {}).get("last_payment_error") or {}
    return InvoicePayment(
        invoice_id=inv["id"],
        invoice_status=str(inv.get("status")),
        amount_due=int(inv.get("amount_due") or 0),
        amount_paid=int(inv.get("amount_paid") or 0),
        currency=str(inv.get("currency")),
        intent_status=(intent or {}).get("status"),
        client_secret=secret,
        error_code=error.get("decline_code") or error.get("code"),
    )


def _options(idempotency_key: str, step: str | None = None) -> stripe.RequestOptions:
    # One user action may take several writes; each needs its own key, or real
    # Stripe would answer the second with the first one's cached response.
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("idempotency_key must be 1-200 characters")
    return {"idempotency_key": f"{idempotency_key}:{step}" if step else idempotency_key}


# The client ------------------------------------------------------------------

class StripeClient:
    """Billing operations against Stripe (or the emulator in test mode), chosen by `settings`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._api_base = settings.stripe_api_base
        self._stripe = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses={"api": self._api_base},
            stripe_version=STRIPE_API_VERSION,
            # Every write carries an idempotency key, so the SDK's retry is safe (both
            # real Stripe and the emulator replay a key's first answer).
            max_network_retries=1,
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
        """The product and its monthly and yearly per-license Prices, found by lookup key.

        A price change in the settings creates a new Price and moves the lookup key
        to it (Prices are never edited: invoices keep pointing at the old one).
        """
        s = self._settings
        self._ensure_product()
        monthly = self._ensure_price("month", s.billing_price_monthly_cents, s.billing_currency)
        yearly = self._ensure_price("year", s.billing_price_yearly_cents, s.billing_currency)
        return Catalogue(PRODUCT_ID, monthly, yearly)

    def _ensure_product(self) -> None:
        # A fixed id makes a concurrent second create fail instead of duplicating.
        try:
            self._call(self._v1.products.retrieve, PRODUCT_ID)
            return
        except GatewayError as err:
            if err.code != "resource_missing":
                raise
        try:
            self._call(self._v1.products.create, params={"id": PRODUCT_ID, "name": PRODUCT_NAME})
        except GatewayError as err:
            if err.code != "resource_already_exists":
                raise

    def _ensure_price(self, interval: Interval, amount: int, currency: str) -> str:
        lookup_key = LOOKUP_KEYS[interval]
        found = self._call(self._v1.prices.list,
                           params={"lookup_keys": [lookup_key], "active": True, "limit": 10})
        for price in found.get("data") or []:
            terms = (price.get("unit_amount"), price.get("currency"),
                     (price.get("recurring") or {}).get("interval"), _id(price.get("product")))
            if terms == (amount, currency, interval, PRODUCT_ID):
                return str(price["id"])
        params: PriceCreateParams = {
            "product": PRODUCT_ID, "unit_amount": amount, "currency": currency,
            "recurring": {"interval": interval, "usage_type": "licensed"},
            "lookup_key": lookup_key, "transfer_lookup_key": True,
            "nickname": f"{PRODUCT_NAME} ({interval}ly)",
        }
        # The key names the terms: concurrent creators of the same terms get one Price.
        price = self._call(self._v1.prices.create, params=params,
                           options=_options(f"price:{lookup_key}:{amount}:{currency}"))
        return str(price["id"])

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
                            idempotency_key: str,
                            subscription_id: str | None = None) -> CardSummary:
        """Attach a card (collected by Stripe.js) and make it the default for invoices.

        Set on the customer and, when given, on the subscription too: a
        subscription's own default payment method wins over the customer's.
        """
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
        if subscription_id:
            update: SubscriptionUpdateParams = {"default_payment_method": pm["id"]}
            self._call(self._v1.subscriptions.update, subscription_id, params=update,
                       options=_options(idempotency_key, "subscription-default"))
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

    def create_subscription(self, customer_id: str, price_id: str, quantity: int, *,
                            payment_method_id: str | None = None, created_by: str = "",
                            idempotency_key: str) -> tuple[SubscriptionSnapshot, InvoicePayment]:
        """Subscribe with the first invoice finalized but not yet paid (`default_incomplete`).

        The customer then confirms that payment on the page (Stripe.js, so 3-D Secure
        works); until it is paid the subscription is `incomplete`, grants nothing,
        and is discarded (`discard_incomplete`) if the payment fails.
        """
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        params: SubscriptionCreateParams = {
            "customer": customer_id,
            "items": [{"price": price_id, "quantity": quantity}],
            "payment_behavior": "default_incomplete",
            "expand": ["latest_invoice.confirmation_secret"],
            "metadata": {"billing_action": created_by[:500]} if created_by else {},
        }
        if payment_method_id:
            params["default_payment_method"] = payment_method_id
        sub = self._call(self._v1.subscriptions.create, params=params,
                         options=_options(idempotency_key, "subscribe"))
        snapshot = _subscription_from(sub)
        invoice = sub.get("latest_invoice")
        if not isinstance(invoice, dict):
            raise _unexpected(f"subscription {sub['id']} has no first invoice")
        return snapshot, self._payment_of(invoice)

    def customer_subscriptions(self, customer_id: str) -> list[SubscriptionSnapshot]:
        """All the customer's subscriptions, ended ones included, newest first."""
        page = self._call(self._v1.subscriptions.list,
                          params={"customer": customer_id, "status": "all", "limit": 20})
        return [_subscription_from(sub) for sub in page.get("data") or []]

    def retrieve_subscription(self, subscription_id: str) -> SubscriptionSnapshot:
        return _subscription_from(self._call(self._v1.subscriptions.retrieve, subscription_id))

    def change_subscription(self, subscription: SubscriptionSnapshot, *, price_id: str,
                            quantity: int, proration_date: int, idempotency_key: str
                            ) -> tuple[SubscriptionSnapshot, InvoicePayment | None]:
        """Set the price and quantity of the subscription's one item and charge at once.

        `always_invoice` invoices the proration (from `proration_date`, the instant the
        preview used) immediately; `pending_if_incomplete` keeps the change pending
        until that invoice is paid, so a decline or a missing authentication changes
        nothing. Returns the subscription and the payment of the change's invoice
        (None when the change invoiced nothing).
        """
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        params: SubscriptionUpdateParams = {
            "items": [{"id": subscription.item_id, "price": price_id, "quantity": quantity}],
            "proration_behavior": "always_invoice",
            "proration_date": proration_date,
            "payment_behavior": "pending_if_incomplete",
            "expand": ["latest_invoice.confirmation_secret"],
        }
        sub = self._call(self._v1.subscriptions.update, subscription.id, params=params,
                         options=_options(idempotency_key, "change"))
        snapshot = _subscription_from(sub)
        invoice = sub.get("latest_invoice")
        if not isinstance(invoice, dict) or invoice.get("id") == subscription.latest_invoice_id:
            return snapshot, None
        return snapshot, self._payment_of(invoice)

    def preview_change(self, subscription: SubscriptionSnapshot, *, price_id: str,
                       quantity: int, proration_date: int) -> InvoicePreview:
        """The invoice `change_subscription` with these values would create now."""
        params: InvoiceCreatePreviewParams = {
            "customer": subscription.customer_id,
            "subscription": subscription.id,
            "subscription_details": {
                "items": [{"id": subscription.item_id, "price": price_id, "quantity": quantity}],
                "proration_behavior": "always_invoice",
                "proration_date": proration_date,
            },
        }
        inv = self._call(self._v1.invoices.create_preview, params=params)
        lines = tuple(_line_from(line) for line in (inv.get("lines") or {}).get("data") or [])
        return InvoicePreview(amount_due=int(inv.get("amount_due") or 0),
                              total=int(inv.get("total") or 0),
                              currency=str(inv.get("currency")), lines=lines)

    def discard_incomplete(self, subscription_id: str, *, idempotency_key: str) -> None:
        """Void the unpaid first invoice and cancel an `incomplete` subscription."""
        sub = self._call(self._v1.subscriptions.retrieve, subscription_id)
        if sub.get("status") != "incomplete":
            return
        invoice_id = _id(sub.get("latest_invoice"))
        if invoice_id:
            self.void_invoice(invoice_id, idempotency_key=idempotency_key)
        cancel: SubscriptionCancelParams = {"prorate": False}
        self._call(self._v1.subscriptions.cancel, subscription_id, params=cancel,
                   options=_options(idempotency_key, "discard"))

    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool, *,
                                 comment: str = "", idempotency_key: str
                                 ) -> SubscriptionSnapshot:
        """Cancel at the period's end (with the customer's words in `cancellation_details`)
        or resume."""
        params: SubscriptionUpdateParams = {"cancel_at_period_end": cancel}
        if cancel and comment:
            params["cancellation_details"] = {"comment": comment[:5000]}
        sub = self._call(self._v1.subscriptions.update, subscription_id, params=params,
                         options=_options(idempotency_key, "cancel" if cancel else "resume"))
        return _subscription_from(sub)

    # Invoices ------------------------------------------------------------------

    def invoice_page(self, customer_id: str, *, limit: int = 25,
                     starting_after: str | None = None) -> InvoicePage:
        """One page of the customer's invoices, newest first, with the next page's cursor."""
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        params: InvoiceListParams = {"customer": customer_id, "limit": limit}
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

    def _payment_of(self, invoice: dict[str, Any]) -> InvoicePayment:
        secret = (invoice.get("confirmation_secret") or {}).get("client_secret")
        intent = None
        if secret and invoice.get("status") == "open":
            intent = self._call(self._v1.payment_intents.retrieve, _intent_id(secret))
        return _payment_from(invoice, intent)

    def invoice_payment(self, invoice_id: str) -> InvoicePayment:
        """Where the invoice's payment stands (paid, waiting for the customer, failed)."""
        inv = self._call(self._v1.invoices.retrieve, invoice_id,
                         params={"expand": ["confirmation_secret"]})
        return self._payment_of(inv)

    def pay_invoice(self, invoice_id: str, *, idempotency_key: str,
                    payment_method_id: str | None = None,
                    on_session: bool = False) -> InvoicePayment:
        """Try to pay an open invoice now; a decline or a 3-D Secure request leaves it open.

        `on_session` when the customer is on the page (after a card change): the bank
        may then ask for authentication, which the page runs with the answer's secret.
        """
        current = self.invoice_payment(invoice_id)
        if current.invoice_status != "open" or current.intent_status == "processing":
            return current
        params: InvoicePayParams = {"off_session": not on_session}
        if payment_method_id:
            params["payment_method"] = payment_method_id
        try:
            self._call(self._v1.invoices.pay, invoice_id, params=params,
                       options=_options(idempotency_key, f"pay:{invoice_id}"))
        except GatewayError as err:
            if err.outcome_unknown or err.code in ("unreachable", "rate_limited",
                                                   "authentication_error", "idempotency_error"):
                raise
            # A decline or an authentication request: the invoice says which.
        return self.invoice_payment(invoice_id)

    def open_invoices(self, customer_id: str) -> list[InvoicePayment]:
        """The customer's unpaid (open) invoices, oldest first (the emulator cannot filter
        by status, so the newest page is read and filtered)."""
        page = self.invoice_page(customer_id, limit=25)
        return [self.invoice_payment(inv.id) for inv in reversed(page.invoices)
                if inv.status == "open"]

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> None:
        """Void an unpaid invoice (discarding the pending update it was paying for)."""
        try:
            self._call(self._v1.invoices.void_invoice, invoice_id,
                       options=_options(idempotency_key, f"void:{invoice_id}"))
        except GatewayError:
            if self.invoice_payment(invoice_id).invoice_status not in ("void", "paid"):
                raise

    # Cards (SetupIntents) ---------------------------------------------------------

    def create_setup_intent(self, customer_id: str, *, idempotency_key: str) -> str:
        """A SetupIntent for Stripe.js `confirmCardSetup`; returns its client secret."""
        intent = self._call(self._v1.setup_intents.create, params={
            "customer": customer_id, "usage": "off_session", "payment_method_types": ["card"],
        }, options=_options(idempotency_key, "setup"))
        return str(intent["client_secret"])

    def setup_intent_payment_method(self, client_secret: str) -> str | None:
        """The card a confirmed SetupIntent collected (None unless it succeeded)."""
        intent = self._call(self._v1.setup_intents.retrieve, _intent_id(client_secret))
        if intent.get("status") != "succeeded":
            return None
        return _id(intent.get("payment_method"))

    # Webhooks ---------------------------------------------------------------------

    def construct_event(self, payload: bytes, signature: str) -> dict[str, Any]:
        """Verify a webhook delivery's signature; raise ValueError if it is not Stripe's."""
        try:
            event = stripe.Webhook.construct_event(payload, signature, self._settings.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise ValueError("invalid webhook signature or payload") from exc
        return event.to_dict()

    # Test mode and health --------------------------------------------------------

    def register_test_webhook(self, url: str, secret: str, endpoint_id: str = "billing-app",
                              events: list[str] | None = None) -> None:
        """Tell the emulator where to send events (its `/_config` API; lost on restart)."""
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
            log.warning("The emulator refused the webhook: %s %s", response.status_code,
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
