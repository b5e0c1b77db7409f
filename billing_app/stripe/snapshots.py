"""Plain, frozen values of what Stripe answered: nothing outside `billing_app.stripe` sees a Stripe
object. Datetimes are timezone-aware (UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_app.plans import Interval
from billing_app.stripe.errors import card_message


@dataclass(frozen=True)
class Catalogue:
    product_id: str
    monthly_price_id: str
    yearly_price_id: str

    def price_id(self, interval: Interval) -> str:
        return self.yearly_price_id if interval == Interval.YEAR else self.monthly_price_id


@dataclass(frozen=True)
class CardSummary:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class BillingDetails:
    """Who the invoices are for: the customer's name, email, address and (one) tax ID at Stripe.

    Empty strings for what is not set; `country` is an ISO 3166-1 alpha-2 code.
    """

    name: str
    email: str
    line1: str = ""
    line2: str = ""
    city: str = ""
    postal_code: str = ""
    state: str = ""
    country: str = ""
    tax_id_type: str = ""
    tax_id_value: str = ""


@dataclass(frozen=True)
class CustomerSnapshot:
    """What the page shows of the Stripe customer: the default card, and the billing details
    (None for a deleted customer)."""

    card: CardSummary | None
    details: BillingDetails | None


@dataclass(frozen=True)
class PendingUpdate:
    """A change Stripe keeps until its invoice is paid (Billing › Pending updates)."""

    price_id: str | None
    quantity: int | None


@dataclass(frozen=True)
class ScheduledChange:
    """What the subscription's schedule bills from the next renewal on (Subscription Schedules:
    the phase after the current one)."""

    schedule_id: str
    starts_at: datetime
    price_id: str
    interval: Interval
    quantity: int
    unit_amount: int


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
    # The schedule managing it, and the change it makes at the renewal (read separately).
    schedule_id: str | None = None
    scheduled: ScheduledChange | None = None


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
    # The buyer as Stripe froze it on the invoice at finalization (later changes never show).
    customer_name: str = ""
    customer_email: str = ""
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
    currency: str


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
        return (
            self.invoice_status == "open"
            and self.intent_status in ("requires_action", "requires_confirmation")
            and self.client_secret is not None
        )

    @property
    def failed(self) -> bool:
        """Declined or not authenticated: open with a payment error, or voided."""
        return self.invoice_status in ("void", "uncollectible") or (
            self.invoice_status == "open"
            and self.intent_status == "requires_payment_method"
            and self.error_code is not None
        )

    @property
    def failure_message(self) -> str:
        return card_message(self.error_code)
