"""The one place that calls Stripe: billing operations against Stripe (or the emulator in test
mode), every call with the SDK's typed request params and an idempotency key on every write."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import stripe
from stripe.params import (
    CustomerUpdateParams,
    CustomerUpdateParamsAddress,
    InvoiceCreatePreviewParams,
    InvoiceListParams,
    InvoicePayParams,
    PriceCreateParams,
    SubscriptionCancelParams,
    SubscriptionCreateParams,
    SubscriptionScheduleCreateParams,
    SubscriptionScheduleUpdateParams,
    SubscriptionUpdateParams,
)

from billing_app.i18n import N_
from billing_app.settings import Settings
from billing_app.stripe.errors import (
    MSG_NOT_FOUND,
    MSG_REFUSED,
    MSG_UNREACHABLE,
    GatewayError,
    user_message_for,
)
from billing_app.stripe.parsing import (
    billing_details_from,
    card_from,
    default_payment_method_of,
    intent_id,
    invoice_from,
    next_phase_of,
    payment_from,
    price_of,
    ref_id,
    subscription_from,
    unexpected,
)
from billing_app.stripe.snapshots import (
    BillingDetails,
    CardSummary,
    Catalogue,
    CustomerSnapshot,
    Interval,
    InvoicePage,
    InvoicePayment,
    InvoicePreview,
    InvoiceSummary,
    ScheduledChange,
    SubscriptionSnapshot,
)

log = logging.getLogger(__name__)

# Pinned so that a newer SDK never silently changes the shapes we parse.
STRIPE_API_VERSION = "2026-10-28.endive"
PRODUCT_ID = "unlimited-version"
PRODUCT_NAME = "Unlimited Version"
LOOKUP_KEYS = {
    Interval.MONTH: "connector_unlimited_monthly",
    Interval.YEAR: "connector_unlimited_yearly",
}
_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
_PROBE_TIMEOUT = 3.0
MSG_TAX_ID_REFUSED = N_(
    "The payment service did not accept this tax ID. Check the number and its type. "
    "Nothing was changed."
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
        monthly = self._ensure_price(
            Interval.MONTH, s.billing_price_monthly_cents, s.billing_currency
        )
        yearly = self._ensure_price(Interval.YEAR, s.billing_price_yearly_cents, s.billing_currency)
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
        found = self._call(
            self._v1.prices.list, params={"lookup_keys": [lookup_key], "active": True, "limit": 10}
        )
        for price in found.get("data") or []:
            terms = (
                price.get("unit_amount"),
                price.get("currency"),
                (price.get("recurring") or {}).get("interval"),
                ref_id(price.get("product")),
            )
            if terms == (amount, currency, interval, PRODUCT_ID):
                return str(price["id"])
        params: PriceCreateParams = {
            "product": PRODUCT_ID,
            "unit_amount": amount,
            "currency": currency,
            "recurring": {"interval": interval, "usage_type": "licensed"},
            "lookup_key": lookup_key,
            "transfer_lookup_key": True,
            "nickname": f"{PRODUCT_NAME} ({interval}ly)",
        }
        # The key names the terms: concurrent creators of the same terms get one Price.
        price = self._call(
            self._v1.prices.create,
            params=params,
            options=_options(f"price:{lookup_key}:{amount}:{currency}"),
        )
        return str(price["id"])

    # Customers and cards -----------------------------------------------------

    def create_customer(
        self, *, name: str, email: str, account_ref: str, idempotency_key: str
    ) -> str:
        customer = self._call(
            self._v1.customers.create,
            params={
                "name": name,
                "email": email,
                "metadata": {"account_ref": account_ref},
            },
            options=_options(idempotency_key),
        )
        return str(customer["id"])

    def customer_exists(self, customer_id: str) -> bool:
        try:
            customer = self._call(self._v1.customers.retrieve, customer_id)
        except GatewayError as err:
            if err.code == "resource_missing":
                return False
            raise
        return not customer.get("deleted", False)

    def attach_default_card(
        self,
        customer_id: str,
        payment_method_id: str,
        *,
        idempotency_key: str,
        subscription_id: str | None = None,
    ) -> CardSummary:
        """Attach a card (collected by Stripe.js) and make it the default for invoices.

        Set on the customer and, when given, on the subscription too: a
        subscription's own default payment method wins over the customer's.
        """
        pm = self._call(self._v1.payment_methods.retrieve, payment_method_id)
        if pm.get("type") != "card":
            raise GatewayError("Only cards are accepted.", code="unsupported_payment_method")
        # Already attached by a SetupIntent made for this customer, or by a retry.
        if ref_id(pm.get("customer")) != customer_id:
            pm = self._call(
                self._v1.payment_methods.attach,
                payment_method_id,
                params={"customer": customer_id},
                options=_options(idempotency_key, "attach"),
            )
        self._call(
            self._v1.customers.update,
            customer_id,
            params={"invoice_settings": {"default_payment_method": pm["id"]}},
            options=_options(idempotency_key, "default"),
        )
        if subscription_id:
            update: SubscriptionUpdateParams = {"default_payment_method": pm["id"]}
            self._call(
                self._v1.subscriptions.update,
                subscription_id,
                params=update,
                options=_options(idempotency_key, "subscription-default"),
            )
        card = card_from(pm)
        if card is None:
            raise unexpected(f"payment method {pm['id']} has no card")
        return card

    def default_card(self, customer_id: str) -> CardSummary | None:
        return self._card_of(self._call(self._v1.customers.retrieve, customer_id))

    def retrieve_customer(self, customer_id: str) -> CustomerSnapshot:
        """The default card and the billing details, tax IDs included in the same read (Customers
        › tax_ids is expandable)."""
        customer = self._call(
            self._v1.customers.retrieve, customer_id, params={"expand": ["tax_ids"]}
        )
        if customer.get("deleted"):
            return CustomerSnapshot(None, None)
        tax_ids = (customer.get("tax_ids") or {}).get("data") or []
        return CustomerSnapshot(self._card_of(customer), billing_details_from(customer, tax_ids))

    def _card_of(self, customer: dict[str, Any]) -> CardSummary | None:
        ref = default_payment_method_of(customer)
        if ref is None:
            return None
        pm = ref if isinstance(ref, dict) else self._call(self._v1.payment_methods.retrieve, ref)
        return card_from(pm)

    def save_billing_details(
        self, customer_id: str, details: BillingDetails, *, idempotency_key: str
    ) -> BillingDetails:
        """Set the customer's name, email and address, and make `details`' tax ID its only one.

        Stripe copies these onto each invoice when it is finalized. Tax IDs cannot be edited, so
        a different one replaces the old (Customer tax IDs: create, delete). The new tax ID is
        created first: if Stripe refuses it, nothing has changed yet. A retry finds what an
        earlier attempt already did.
        """
        wanted = (details.tax_id_type, details.tax_id_value)
        listed = self._call(self._v1.customers.tax_ids.list, customer_id, params={"limit": 100})
        existing: list[dict[str, Any]] = listed.get("data") or []
        kept = next((t for t in existing if (t.get("type"), t.get("value")) == wanted), None)
        if details.tax_id_type and kept is None:
            kept = self._new_tax_id(customer_id, details, idempotency_key)
        # Every address field is sent: an empty one unsets what was there.
        address: CustomerUpdateParamsAddress = {
            "line1": details.line1,
            "line2": details.line2,
            "city": details.city,
            "postal_code": details.postal_code,
            "state": details.state,
            "country": details.country,
        }
        params: CustomerUpdateParams = {
            "name": details.name,
            "email": details.email,
            "address": address,
        }
        customer = self._call(
            self._v1.customers.update,
            customer_id,
            params=params,
            options=_options(idempotency_key, "details"),
        )
        for tax_id in existing:
            if tax_id is kept:
                continue
            try:  # DELETE is idempotent at Stripe: it takes no idempotency key
                self._call(self._v1.customers.tax_ids.delete, customer_id, str(tax_id["id"]))
            except GatewayError as err:
                if err.code != "resource_missing":
                    raise
        return billing_details_from(customer, [kept] if kept is not None else [])

    def _new_tax_id(
        self, customer_id: str, details: BillingDetails, idempotency_key: str
    ) -> dict[str, Any]:
        try:
            return self._call(
                self._v1.customers.tax_ids.create,
                customer_id,
                params={"type": details.tax_id_type, "value": details.tax_id_value},
                options=_options(idempotency_key, "tax-id"),
            )
        except GatewayError as err:
            if err.code == "tax_id_invalid":
                raise GatewayError(MSG_TAX_ID_REFUSED, code=err.code) from err
            raise

    # Subscriptions -------------------------------------------------------------

    def create_subscription(
        self,
        customer_id: str,
        price_id: str,
        quantity: int,
        *,
        payment_method_id: str | None = None,
        created_by: str = "",
        idempotency_key: str,
    ) -> tuple[SubscriptionSnapshot, InvoicePayment]:
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
        sub = self._call(
            self._v1.subscriptions.create,
            params=params,
            options=_options(idempotency_key, "subscribe"),
        )
        snapshot = subscription_from(sub)
        invoice = sub.get("latest_invoice")
        if not isinstance(invoice, dict):
            raise unexpected(f"subscription {sub['id']} has no first invoice")
        return snapshot, self._payment_of(invoice)

    def customer_subscriptions(self, customer_id: str) -> list[SubscriptionSnapshot]:
        """All the customer's subscriptions, ended ones included, newest first."""
        page = self._call(
            self._v1.subscriptions.list,
            params={"customer": customer_id, "status": "all", "limit": 20},
        )
        return [subscription_from(sub) for sub in page.get("data") or []]

    def retrieve_subscription(self, subscription_id: str) -> SubscriptionSnapshot:
        return self._with_schedule(
            subscription_from(self._call(self._v1.subscriptions.retrieve, subscription_id))
        )

    def _with_schedule(self, subscription: SubscriptionSnapshot) -> SubscriptionSnapshot:
        """The subscription with the change its schedule makes at the renewal, if any."""
        if subscription.schedule_id is None:
            return subscription
        schedule = self._call(self._v1.subscription_schedules.retrieve, subscription.schedule_id)
        phase = next_phase_of(schedule)
        if phase is None:
            return subscription
        starts_at, price_id, quantity = phase
        _, interval, amount, _ = price_of({"price": self._call(self._v1.prices.retrieve, price_id)})
        if interval not in tuple(Interval):
            raise unexpected(f"price {price_id} interval {interval!r}")
        scheduled = ScheduledChange(
            subscription.schedule_id,
            starts_at,
            price_id,
            Interval(interval),
            quantity,
            int(amount or 0),
        )
        return dataclasses.replace(subscription, scheduled=scheduled)

    def change_subscription(
        self,
        subscription: SubscriptionSnapshot,
        *,
        price_id: str,
        quantity: int,
        proration_date: int,
        idempotency_key: str,
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
        sub = self._call(
            self._v1.subscriptions.update,
            subscription.id,
            params=params,
            options=_options(idempotency_key, "change"),
        )
        snapshot = self._with_schedule(subscription_from(sub))
        invoice = sub.get("latest_invoice")
        if not isinstance(invoice, dict) or invoice.get("id") == subscription.latest_invoice_id:
            return snapshot, None
        return snapshot, self._payment_of(invoice)

    def preview_change(
        self,
        subscription: SubscriptionSnapshot,
        *,
        price_id: str,
        quantity: int,
        proration_date: int,
    ) -> InvoicePreview:
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
        return InvoicePreview(
            amount_due=int(inv.get("amount_due") or 0), currency=str(inv.get("currency"))
        )

    def discard_incomplete(self, subscription_id: str, *, idempotency_key: str) -> None:
        """Void the unpaid first invoice and cancel an `incomplete` subscription."""
        sub = self._call(self._v1.subscriptions.retrieve, subscription_id)
        if sub.get("status") != "incomplete":
            return
        invoice_id = ref_id(sub.get("latest_invoice"))
        if invoice_id:
            self.void_invoice(invoice_id, idempotency_key=idempotency_key)
        cancel: SubscriptionCancelParams = {"prorate": False}
        self._call(
            self._v1.subscriptions.cancel,
            subscription_id,
            params=cancel,
            options=_options(idempotency_key, "discard"),
        )

    def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool, *, comment: str = "", idempotency_key: str
    ) -> SubscriptionSnapshot:
        """Cancel at the period's end (with the customer's words in `cancellation_details`)
        or resume."""
        params: SubscriptionUpdateParams = {"cancel_at_period_end": cancel}
        if cancel and comment:
            params["cancellation_details"] = {"comment": comment[:5000]}
        sub = self._call(
            self._v1.subscriptions.update,
            subscription_id,
            params=params,
            options=_options(idempotency_key, "cancel" if cancel else "resume"),
        )
        return self._with_schedule(subscription_from(sub))

    # Changes at the next renewal (Subscription Schedules) ------------------------------

    def schedule_renewal_change(
        self,
        subscription: SubscriptionSnapshot,
        *,
        price_id: str,
        interval: Interval,
        quantity: int,
        idempotency_key: str,
    ) -> SubscriptionSnapshot:
        """From the next renewal on, bill `quantity` of `price_id`; the current period stays as
        it is (no proration now, none at the renewal).

        A schedule made from the subscription (or the one already managing it) gets two phases:
        the current one unchanged until `current_period_end`, then one period of the new terms;
        `end_behavior=release` then leaves the subscription running on them.
        """
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        if subscription.current_period_end is None:
            raise unexpected(f"subscription {subscription.id} has no current period")
        if subscription.schedule_id is None:
            create: SubscriptionScheduleCreateParams = {"from_subscription": subscription.id}
            schedule = self._call(
                self._v1.subscription_schedules.create,
                params=create,
                options=_options(idempotency_key, "schedule"),
            )
        else:
            schedule = self._call(
                self._v1.subscription_schedules.retrieve, subscription.schedule_id
            )
        start = (schedule.get("current_phase") or {}).get("start_date")
        if start is None:
            raise unexpected(f"schedule {schedule.get('id')} has no current phase")
        update: SubscriptionScheduleUpdateParams = {
            "phases": [
                {
                    "items": [{"price": subscription.price_id, "quantity": subscription.quantity}],
                    # Stripe refuses a changed start date for the phase in progress.
                    "start_date": int(start),
                    "end_date": int(subscription.current_period_end.timestamp()),
                },
                {
                    "items": [{"price": price_id, "quantity": quantity}],
                    "duration": {"interval": interval, "interval_count": 1},
                },
            ],
            "end_behavior": "release",
            "proration_behavior": "none",
        }
        self._call(
            self._v1.subscription_schedules.update,
            str(schedule["id"]),
            params=update,
            options=_options(idempotency_key, f"phases:{quantity}:{price_id}"),
        )
        return self.retrieve_subscription(subscription.id)

    def release_schedule(
        self, subscription: SubscriptionSnapshot, *, idempotency_key: str
    ) -> SubscriptionSnapshot:
        """Drop the changes scheduled for the renewal: the subscription renews as it is."""
        if subscription.schedule_id is not None:
            self._call(
                self._v1.subscription_schedules.release,
                subscription.schedule_id,
                options=_options(idempotency_key, f"release:{subscription.schedule_id}"),
            )
        return self.retrieve_subscription(subscription.id)

    # Invoices ------------------------------------------------------------------

    def invoice_page(
        self, customer_id: str, *, limit: int = 25, starting_after: str | None = None
    ) -> InvoicePage:
        """One page of the customer's invoices, newest first, with the next page's cursor."""
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        params: InvoiceListParams = {"customer": customer_id, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = self._call(self._v1.invoices.list, params=params)
        data = page.get("data") or []
        invoices = [invoice_from(inv) for inv in data]
        # localstripe orders by its `date` (a period boundary), not by creation.
        invoices.sort(key=lambda inv: inv.created, reverse=True)
        return InvoicePage(
            invoices, bool(page.get("has_more")), str(data[-1]["id"]) if data else None
        )

    def retrieve_invoice(
        self, invoice_id: str, *, customer_id: str | None = None
    ) -> InvoiceSummary:
        """The invoice with all its lines. With `customer_id`, another customer's
        invoice is reported as missing (GatewayError code `resource_missing`)."""
        inv = self._call(self._v1.invoices.retrieve, invoice_id)
        if customer_id is not None and ref_id(inv.get("customer")) != customer_id:
            raise GatewayError(MSG_NOT_FOUND, code="resource_missing")
        page = inv.get("lines") or {}
        lines = list(page.get("data") or [])
        while page.get("has_more") and lines:
            page = self._call(
                self._v1.invoices.line_items.list,
                invoice_id,
                params={"limit": 100, "starting_after": lines[-1]["id"]},
            )
            lines.extend(page.get("data") or [])
        return invoice_from(inv, lines)

    def _payment_of(self, invoice: dict[str, Any]) -> InvoicePayment:
        secret = (invoice.get("confirmation_secret") or {}).get("client_secret")
        intent = None
        if secret and invoice.get("status") == "open":
            intent = self._call(self._v1.payment_intents.retrieve, intent_id(secret))
        return payment_from(invoice, intent)

    def invoice_payment(self, invoice_id: str) -> InvoicePayment:
        """Where the invoice's payment stands (paid, waiting for the customer, failed)."""
        inv = self._call(
            self._v1.invoices.retrieve, invoice_id, params={"expand": ["confirmation_secret"]}
        )
        return self._payment_of(inv)

    def pay_invoice(
        self,
        invoice_id: str,
        *,
        idempotency_key: str,
        payment_method_id: str | None = None,
        on_session: bool = False,
    ) -> InvoicePayment:
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
            self._call(
                self._v1.invoices.pay,
                invoice_id,
                params=params,
                options=_options(idempotency_key, f"pay:{invoice_id}"),
            )
        except GatewayError as err:
            if err.outcome_unknown or err.code in (
                "unreachable",
                "rate_limited",
                "authentication_error",
                "idempotency_error",
            ):
                raise
            # A decline or an authentication request: the invoice says which.
        return self.invoice_payment(invoice_id)

    def open_invoices(self, customer_id: str) -> list[InvoicePayment]:
        """The customer's unpaid (open) invoices, oldest first (the emulator cannot filter
        by status, so the newest page is read and filtered)."""
        page = self.invoice_page(customer_id, limit=25)
        return [
            self.invoice_payment(inv.id) for inv in reversed(page.invoices) if inv.status == "open"
        ]

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> None:
        """Void an unpaid invoice (discarding the pending update it was paying for)."""
        try:
            self._call(
                self._v1.invoices.void_invoice,
                invoice_id,
                options=_options(idempotency_key, f"void:{invoice_id}"),
            )
        except GatewayError:
            if self.invoice_payment(invoice_id).invoice_status not in ("void", "paid"):
                raise

    # Cards (SetupIntents) ---------------------------------------------------------

    def create_setup_intent(self, customer_id: str, *, idempotency_key: str) -> str:
        """A SetupIntent for Stripe.js `confirmCardSetup`; returns its client secret."""
        intent = self._call(
            self._v1.setup_intents.create,
            params={
                "customer": customer_id,
                "usage": "off_session",
                "payment_method_types": ["card"],
            },
            options=_options(idempotency_key, "setup"),
        )
        return str(intent["client_secret"])

    def setup_intent_payment_method(self, client_secret: str) -> str | None:
        """The card a confirmed SetupIntent collected (None unless it succeeded)."""
        intent = self._call(self._v1.setup_intents.retrieve, intent_id(client_secret))
        if intent.get("status") != "succeeded":
            return None
        return ref_id(intent.get("payment_method"))

    # Webhooks ---------------------------------------------------------------------

    def construct_event(self, payload: bytes, signature: str) -> dict[str, Any]:
        """Verify a webhook delivery's signature; raise ValueError if it is not Stripe's."""
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._settings.webhook_secret
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise ValueError("invalid webhook signature or payload") from exc
        return event.to_dict()

    # Test mode and health --------------------------------------------------------

    def register_test_webhook(
        self,
        url: str,
        secret: str,
        endpoint_id: str = "billing-app",
        events: list[str] | None = None,
    ) -> None:
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
            log.warning(
                "The emulator refused the webhook: %s %s", response.status_code, response.text[:200]
            )
            raise GatewayError(MSG_REFUSED, code=f"http_{response.status_code}")
