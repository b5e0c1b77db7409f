"""Stripe semantics that localstripe 1.15.10 lacks, added to it at `install()` time.

This module is the emulator, not product code: it monkeypatches localstripe's
classes and routes so that test mode behaves like real Stripe (API version
`2026-10-28.endive`) for everything the Billing Page relies on. Each section
names the Stripe API reference section it follows. `install()` is idempotent
and must run before the aiohttp app starts (middlewares and routes freeze then);
`billing_app.localstripe_server` calls it.

What is emulated (see docs/stripe-compat.md for the call shapes):
Prices backed by Plans of the same id, `price` accepted wherever `plan` is;
subscription `payment_behavior` on create and update; time-based proration;
interval changes that reset the billing cycle; pending updates; previews equal
to the invoice an update creates; invoices that carry their payment
(`confirmation_secret`, `payments`, `number`, frozen customer details);
3-D Secure cards on every payment; `/pay` and `/confirm` errors as Stripe sends
them; Stripe.js `confirmCardPayment`; void and cancel; events; idempotent
requests; more tax ID types.

Subscription schedules made from a subscription (two phases, release) and a
renewal on request (`POST /_config/subscriptions/{id}/renew`, test tooling).

Limits: one item per subscription (as localstripe); no test clocks (a period
rolls over only on that request); tiered prices are prorated on their total for
the quantity.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import types
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from aiohttp import web
from dateutil.relativedelta import relativedelta
from localstripe import resources, server  # type: ignore[import-untyped]
from localstripe.errors import UserError  # type: ignore[import-untyped]
from localstripe.resources import (  # type: ignore[import-untyped]
    Customer,
    Event,
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    PaymentIntent,
    PaymentMethod,
    Plan,
    Product,
    StripeObject,
    Subscription,
    SubscriptionItem,
    TaxId,
    store,
    try_convert_to_bool,
    try_convert_to_int,
)

_installed = False


# Small helpers ----------------------------------------------------------------


def _now() -> int:
    return int(time.time())


def _emit(event_type: str, obj: Any, previous: dict[str, Any] | None = None) -> None:
    """Record an event and send it to the registered webhooks (Stripe API: Events)."""
    event = Event(event_type, obj)
    if previous:
        event.data["previous_attributes"] = previous
    resources.schedule_webhook(event)


def _bad_request(message: str, code: str | None = None, param: str | None = None) -> UserError:
    contents: dict[str, Any] = {}
    if code:
        contents["code"] = code
    if param:
        contents["param"] = param
    return UserError(400, message, contents)


def _card_error(message: str, code: str, **extra: Any) -> UserError:
    """HTTP 402 as Stripe sends it (Stripe API: Errors › card_error)."""
    error = UserError(
        402, message, {"code": code, **{k: v for k, v in extra.items() if v is not None}}
    )
    error.body["error"]["type"] = "card_error"
    return error


def _get(kind: str, object_id: str | None) -> Any:
    """A stored object or None (no 404), e.g. a subscription an invoice names."""
    if not object_id:
        return None
    return store.get(f"{kind}:{object_id}")


def _check(condition: bool, message: str = "Bad request", param: str | None = None) -> None:
    if not condition:
        raise _bad_request(message, param=param)


def _unexpected(kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise _bad_request("Received unknown parameter: " + ", ".join(sorted(kwargs)))


def _add_interval(start: int, plan: Any) -> int:
    count = int(getattr(plan, "interval_count", 1) or 1)
    step = {
        "day": relativedelta(days=count),
        "week": relativedelta(weeks=count),
        "month": relativedelta(months=count),
        "year": relativedelta(years=count),
    }[plan.interval]
    return int((datetime.fromtimestamp(start, UTC) + step).timestamp())


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y")


def _round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)).__floor__())


def _amount_for(plan: Any, quantity: int) -> int:
    """What `quantity` of `plan` costs for one full period (per unit or tiered)."""
    probe = types.SimpleNamespace(plan=plan, quantity=quantity)
    probe._calculate_amount_in_tier = lambda q, i: SubscriptionItem._calculate_amount_in_tier(
        probe, q, i
    )
    return int(SubscriptionItem._calculate_amount(probe))


def _product_name(plan: Any) -> str:
    product = _get("product", plan.product)
    return product.name if product is not None else plan.product


def _snapshot(obj: Any) -> dict[str, Any]:
    return json.loads(json.dumps(obj._export(), default=str))


def _changed_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in before.items() if after.get(k) != v}


# Prices (Stripe API: Prices) ---------------------------------------------------------
# Each Price is backed by a Plan with the same id, so localstripe's subscription
# and invoice machinery (which knows only plans) works unchanged for prices.


def price_view(plan: Any) -> dict[str, Any] | None:
    """The `price` object of a plan: the Price backed by it, else the plan seen as a price
    (real Stripe serves every plan as a price with the same id)."""
    if plan is None:
        return None
    price = _get("price", plan.id)
    if price is not None:
        return price._export()
    return {
        "id": plan.id,
        "object": "price",
        "active": plan.active,
        "billing_scheme": plan.billing_scheme,
        "created": plan.created,
        "currency": plan.currency,
        "livemode": False,
        "lookup_key": None,
        "metadata": dict(plan.metadata or {}),
        "nickname": plan.nickname,
        "product": plan.product,
        "recurring": {
            "interval": plan.interval,
            "interval_count": plan.interval_count,
            "usage_type": plan.usage_type,
            "meter": None,
            "trial_period_days": None,
        },
        "tax_behavior": "unspecified",
        "tiers_mode": plan.tiers_mode,
        "type": "recurring",
        "unit_amount": plan.amount,
        "unit_amount_decimal": str(plan.amount),
    }


def _active_price_with_lookup_key(lookup_key: str) -> Any:
    return next(
        (
            p
            for k, p in store.items()
            if k.startswith("price:") and p.active and p.lookup_key == lookup_key
        ),
        None,
    )


def _claim_lookup_key(price_id: str | None, lookup_key: str | None, transfer: bool) -> None:
    """A lookup key names one active price; `transfer_lookup_key` moves it (Prices › lookup_key)."""
    if lookup_key is None:
        return
    holder = _active_price_with_lookup_key(lookup_key)
    if holder is None or holder.id == price_id:
        return
    if not transfer:
        raise _bad_request(
            f"A price (`{holder.id}`) already uses that lookup key. Set `transfer_lookup_key` "
            "to `true` to move it to this price.",
            code="lookup_key_already_used",
            param="lookup_key",
        )
    holder.lookup_key = None


class Price(StripeObject):  # type: ignore[misc]
    object = "price"
    _id_prefix = "price_"

    def __init__(
        self,
        product: Any = None,
        unit_amount: Any = None,
        currency: Any = None,
        recurring: Any = None,
        lookup_key: Any = None,
        transfer_lookup_key: Any = False,
        nickname: Any = None,
        metadata: Any = None,
        active: Any = True,
        product_data: Any = None,
        billing_scheme: str = "per_unit",
        tax_behavior: Any = None,
        **kwargs: Any,
    ) -> None:
        _unexpected(kwargs)
        unit_amount = try_convert_to_int(unit_amount)
        active = try_convert_to_bool(active)
        transfer = try_convert_to_bool(transfer_lookup_key)
        recurring = recurring or {}
        interval_count = try_convert_to_int(recurring.get("interval_count", 1))
        _check(
            isinstance(unit_amount, int) and unit_amount >= 0, "Invalid unit_amount", "unit_amount"
        )
        _check(isinstance(currency, str) and bool(currency), "Missing currency", "currency")
        _check(
            recurring.get("interval") in ("day", "week", "month", "year"),
            "Only recurring prices are emulated: recurring[interval] is required",
            "recurring",
        )
        _check(isinstance(interval_count, int) and interval_count >= 1, "Invalid interval_count")
        _check(
            recurring.get("usage_type", "licensed") == "licensed",
            "Only licensed prices are emulated",
        )
        _check(billing_scheme == "per_unit", "Only per_unit prices are emulated", "billing_scheme")
        _check(isinstance(active, bool) and isinstance(transfer, bool), "Bad request")
        _check(
            lookup_key is None or (isinstance(lookup_key, str) and 0 < len(lookup_key) <= 200),
            "Invalid lookup_key",
            "lookup_key",
        )
        _check(nickname is None or isinstance(nickname, str), "Invalid nickname", "nickname")
        _check(metadata is None or isinstance(metadata, dict), "Invalid metadata", "metadata")
        if product_data is not None:
            _check(
                product is None and isinstance(product_data, dict),
                "Bad product_data",
                "product_data",
            )
        else:
            _check(isinstance(product, str) and bool(product), "Missing product", "product")
            Product._api_retrieve(product)  # 404 if missing
        if active:
            _claim_lookup_key(None, lookup_key, transfer)

        # All exceptions must be raised before this point.
        super().__init__()
        if product_data is not None:
            product = Product(**product_data).id
        Plan(
            id=self.id,
            product=product,
            amount=unit_amount,
            currency=currency.lower(),
            interval=recurring["interval"],
            interval_count=interval_count,
            nickname=nickname,
            metadata=dict(metadata or {}),
            active=active,
        )
        self.active = active
        self.billing_scheme = "per_unit"
        self.currency = currency.lower()
        self.lookup_key = lookup_key
        self.metadata = dict(metadata or {})
        self.nickname = nickname
        self.product = product
        self.recurring = {
            "interval": recurring["interval"],
            "interval_count": interval_count,
            "usage_type": "licensed",
            "meter": None,
            "trial_period_days": None,
        }
        self.tax_behavior = tax_behavior or "unspecified"
        self.tiers_mode = None
        self.type = "recurring"
        self.unit_amount = unit_amount
        self.unit_amount_decimal = str(unit_amount)
        _emit("price.created", self)

    @property
    def _plan(self) -> Any:
        return _get("plan", self.id)

    def _update(
        self,
        active: Any = None,
        lookup_key: Any = None,
        transfer_lookup_key: Any = False,
        nickname: Any = None,
        metadata: Any = None,
        tax_behavior: Any = None,
        **kwargs: Any,
    ) -> None:
        _unexpected(kwargs)
        active = try_convert_to_bool(active)
        transfer = try_convert_to_bool(transfer_lookup_key)
        _check(active is None or isinstance(active, bool), "Invalid active", "active")
        _check(metadata is None or isinstance(metadata, dict), "Invalid metadata", "metadata")
        if lookup_key == "":
            self.lookup_key = lookup_key = None
        stays_active = self.active if active is None else active
        if stays_active:
            _claim_lookup_key(
                self.id, lookup_key if lookup_key is not None else self.lookup_key, bool(transfer)
            )
        if lookup_key is not None:
            self.lookup_key = lookup_key
        if active is not None:
            self.active = active
        if nickname is not None:
            self.nickname = nickname or None
        if metadata:
            self.metadata.update(metadata)
        if tax_behavior is not None:
            self.tax_behavior = tax_behavior
        plan = self._plan
        if plan is not None:  # the backing plan follows
            plan.active, plan.nickname, plan.metadata = (
                self.active,
                self.nickname,
                dict(self.metadata),
            )

    @classmethod
    def _api_update(cls, id: str, **data: Any) -> Any:
        obj = cls._api_retrieve(id)
        obj._update(**data)
        _emit("price.updated", obj)
        return obj

    @classmethod
    def _api_delete(cls, id: str) -> Any:
        raise UserError(405, "Prices cannot be deleted: set active=false")

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        active: Any = None,
        product: Any = None,
        lookup_keys: Any = None,
        currency: Any = None,
        type: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **kwargs: Any,
    ) -> Any:
        _unexpected(kwargs)
        active = try_convert_to_bool(active)
        if isinstance(lookup_keys, str):
            lookup_keys = [lookup_keys]
        _check(active is None or isinstance(active, bool), "Invalid active", "active")
        _check(
            lookup_keys is None or isinstance(lookup_keys, list),
            "Invalid lookup_keys",
            "lookup_keys",
        )
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        keep = [
            p
            for p in li._list
            if (active is None or p.active == active)
            and (product is None or p.product == product)
            and (currency is None or p.currency == currency)
            and (type is None or p.type == type)
            and (lookup_keys is None or p.lookup_key in lookup_keys)
        ]
        li._list = sorted(keep, key=lambda p: p.created, reverse=True)  # newest first, as Stripe
        return li


def _plan_of(item: dict[str, Any], where: str) -> dict[str, Any]:
    """Subscription items and previews accept `price` wherever they accept `plan`."""
    item = dict(item)
    price = item.pop("price", None)
    if price is not None:
        _check(
            isinstance(price, str) and item.get("plan") in (None, price),
            f"Pass either price or plan in {where}, not both",
            "price",
        )
        item["plan"] = price
    return item


# Billing periods (Billing › Billing cycle) ------------------------------------------
# localstripe derives a subscription's period from its start_date; an interval
# change must reset the cycle to the moment of the change, so the period is
# computed from an anchor this module controls.


def _anchor(sub: Any) -> int:
    return int(getattr(sub, "_emu_anchor", None) or sub.start_date)


def _item_current_period(self: Any) -> dict[str, int]:
    sub = _get("subscription", self._subscription)
    start = _anchor(sub) if sub is not None else _now()
    return {"start": start, "end": _add_interval(start, self.plan)}


def _install_item_fields() -> None:
    SubscriptionItem._current_period = _item_current_period
    # Newer API versions put the period, the price and the subscription on the item.
    SubscriptionItem.current_period_start = property(lambda self: self._current_period()["start"])
    SubscriptionItem.current_period_end = property(lambda self: self._current_period()["end"])
    SubscriptionItem.price = property(lambda self: price_view(self.plan))
    SubscriptionItem.subscription = property(lambda self: self._subscription)
    InvoiceItem.price = property(lambda self: price_view(self.plan))


# Invoices carry their payment (Stripe API: Invoices) -----------------------------------


def _next_invoice_number() -> str:
    # Kept in the store so that numbers stay unique across restarts of a stored emulator.
    number = int(store.get("emulator:invoice_number", 0)) + 1
    dict.__setitem__(store, "emulator:invoice_number", number)
    return f"EMU-{number:06d}"


def _payment_intent_of(invoice: Any) -> Any:
    return _get("payment_intent", invoice.payment_intent)


def _confirmation_secret(self: Any) -> dict[str, str] | None:
    """Invoices › confirmation_secret: what Stripe.js needs to confirm the payment."""
    pi = _payment_intent_of(self)
    if pi is None or self._draft:
        return None
    return {"client_secret": pi.client_secret, "type": "payment_intent"}


def _payments(self: Any) -> dict[str, Any]:
    """Invoices › payments: the PaymentIntent(s) that pay the invoice."""
    pi = _payment_intent_of(self)
    data = []
    if pi is not None:
        status = {"succeeded": "paid", "canceled": "canceled"}.get(pi.status, "open")
        data.append(
            {
                "id": "inpay_" + pi.id[3:],
                "object": "invoice_payment",
                "amount_paid": pi.amount if status == "paid" else 0,
                "amount_requested": pi.amount,
                "created": pi.created,
                "currency": pi.currency,
                "invoice": self.id,
                "is_default": True,
                "livemode": False,
                "payment": {"type": "payment_intent", "payment_intent": pi.id},
                "status": status,
                "status_transitions": {
                    "canceled_at": None,
                    "paid_at": self.status_transitions.get("paid_at"),
                },
            }
        )
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "url": f"/v1/invoice_payments?invoice={self.id}",
    }


def _frozen(field: str) -> property:
    return property(lambda self: (getattr(self, "_emu_frozen", None) or {}).get(field))


def _freeze_customer(invoice: Any) -> None:
    """Invoices › customer_name/address/tax_ids are copied from the customer at finalization."""
    cus = _get("customer", invoice.customer)
    invoice._emu_frozen = {
        "number": _next_invoice_number(),
        "customer_name": getattr(cus, "name", None),
        "customer_address": dict(cus.address) if getattr(cus, "address", None) else None,
        "customer_tax_ids": [{"type": t.type, "value": t.value} for t in cus.tax_ids._list]
        if cus
        else [],
        "customer_email": getattr(cus, "email", None),
    }


def _line_parent(self: Any) -> dict[str, Any]:
    """Invoice line items › parent (newer API): where the line comes from."""
    invoice_item = getattr(self, "invoice_item", None) if self.type == "invoiceitem" else None
    proration_details = {"credited_items": None}
    if self.subscription:
        return {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item,
                "proration": bool(self.proration),
                "proration_details": proration_details,
                "subscription": self.subscription,
                "subscription_item": getattr(self, "subscription_item", None),
            },
        }
    return {
        "type": "invoice_item_details",
        "subscription_item_details": None,
        "invoice_item_details": {
            "invoice_item": invoice_item,
            "proration": bool(self.proration),
            "proration_details": proration_details,
            "subscription": None,
        },
    }


def _line_pricing(self: Any) -> dict[str, Any] | None:
    """Invoice line items › pricing.price_details (newer API)."""
    if self.plan is None:
        return None
    return {
        "type": "price_details",
        "unit_amount_decimal": str(self.plan.amount),
        "price_details": {"price": self.plan.id, "product": self.plan.product},
    }


_original_line_init = InvoiceLineItem.__init__


def _line_init(self: Any, item: Any) -> None:
    _original_line_init(self, item)
    # Lines made by this module from invoice items: a subscription's full-period
    # line is a "subscription" line, and every line knows its subscription item.
    if getattr(item, "_emu_line_type", None):
        self.type = item._emu_line_type
    if getattr(item, "_emu_subscription_item", None):
        self.subscription_item = item._emu_subscription_item


def _install_invoice_fields() -> None:
    Invoice.confirmation_secret = property(_confirmation_secret)
    Invoice.payments = property(_payments)
    Invoice.amount_remaining = property(lambda self: max(0, self.amount_due - self.amount_paid))
    Invoice.number = _frozen("number")
    Invoice.customer_name = _frozen("customer_name")
    Invoice.customer_address = _frozen("customer_address")
    Invoice.customer_tax_ids = _frozen("customer_tax_ids")
    InvoiceLineItem.__init__ = _line_init
    InvoiceLineItem.parent = property(_line_parent)
    InvoiceLineItem.pricing = property(_line_pricing)
    InvoiceLineItem.price = property(lambda self: price_view(self.plan))


def finalize(invoice: Any) -> None:
    """Finalize a draft (Invoices › Finalize): number it, freeze the customer, apply the
    customer's credit balance, send `invoice.finalized`; a zero invoice is paid at once."""
    if not invoice._draft or invoice._voided:
        return
    invoice._draft = False
    invoice.status_transitions["finalized_at"] = _now()
    _freeze_customer(invoice)
    invoice.customer_email = invoice._emu_frozen["customer_email"]
    cus = _get("customer", invoice.customer)
    if cus is not None:  # the balance is used up (or grows from a credit), as on Stripe
        cus.account_balance = invoice.ending_balance = max(
            0, invoice.starting_balance - invoice.subtotal - invoice.tax
        )
    _emit("invoice.finalized", invoice)
    if invoice.status == "paid":
        invoice._on_payment_success()


def _api_finalize_invoice(id: str, auto_advance: Any = None, **kwargs: Any) -> Any:
    _unexpected(kwargs)
    invoice = Invoice._api_retrieve(id)
    if not invoice._draft:
        raise _bad_request("This invoice is already finalized.", code="invoice_not_editable")
    finalize(invoice)
    return invoice


# Invoice creation (Stripe API: Create an invoice) -------------------------------------

_HOLD = "in_emulator_hold"


def _pending_items(customer: str) -> list[Any]:
    return [
        ii
        for k, ii in list(store.items())
        if k.startswith("invoiceitem:") and ii.invoice is None and ii.customer == customer
    ]


def new_invoice(
    customer: str,
    subscription: Any,
    items: list[Any],
    *,
    sweep: str,
    billing_reason: str | None = None,
    simulation: bool = False,
    date: int | None = None,
) -> Any:
    """An Invoice with `items` plus the pending invoice items chosen by `sweep`:
    "customer" (all of the customer's), "subscription" (that subscription's) or "none"."""

    def wanted(ii: Any) -> bool:
        return sweep == "customer" or (
            sweep == "subscription"
            and subscription is not None
            and ii.subscription == subscription.id
        )

    held = [ii for ii in _pending_items(customer) if ii not in items and not wanted(ii)]
    for ii in held:  # localstripe's Invoice takes every pending item: hide the others
        ii.invoice = _HOLD
    try:
        tax_rates = None
        if subscription is not None and subscription.default_tax_rates:
            tax_rates = [tr.id for tr in subscription.default_tax_rates]
        invoice = Invoice(
            customer=customer,
            subscription=subscription.id if subscription else None,
            items=items,
            date=date,
            simulation=simulation,
            tax_percent=subscription.tax_percent if subscription else None,
            default_tax_rates=tax_rates,
        )
    finally:
        for ii in held:
            ii.invoice = None
    invoice.billing_reason = billing_reason
    return invoice


def _api_create_invoice(
    cls: Any,
    customer: Any = None,
    subscription: Any = None,
    pending_invoice_items_behavior: Any = None,
    description: Any = None,
    metadata: Any = None,
    auto_advance: Any = None,
    collection_method: Any = None,
    default_tax_rates: Any = None,
    tax_percent: Any = None,
    **kwargs: Any,
) -> Any:
    """Create an invoice › pending_invoice_items_behavior: a draft holding the pending
    invoice items (of `subscription` when given), never the subscription's next period."""
    _unexpected(kwargs)
    _check(
        pending_invoice_items_behavior in (None, "include", "exclude"),
        "Invalid pending_invoice_items_behavior",
        "pending_invoice_items_behavior",
    )
    _check(
        collection_method in (None, "charge_automatically"), "Only charge_automatically is emulated"
    )
    _check(
        isinstance(customer, str) or isinstance(subscription, str), "Missing customer", "customer"
    )
    sub = Subscription._api_retrieve(subscription) if subscription else None
    customer = customer or sub.customer
    Customer._api_retrieve(customer)  # 404 if missing
    if sub is not None and sub.customer != customer:
        raise UserError(404, "No such subscription for customer")
    include = pending_invoice_items_behavior == "include"  # Stripe's default is exclude
    pending = [ii for ii in _pending_items(customer) if sub is None or ii.subscription == sub.id]
    if include and not pending:
        raise _bad_request("Nothing to invoice for customer", code="invoice_no_customer_line_items")
    invoice = new_invoice(
        customer, sub, pending if include else [], sweep="none", billing_reason="manual"
    )
    invoice.description = description
    invoice.metadata = dict(metadata or {})
    return invoice


# Paying an invoice (Stripe API: Pay an invoice; Testing › Cards › Authentication) -------


def _default_payment_method(invoice: Any) -> str | None:
    """The subscription's default payment method, else the customer's."""
    sub = _get("subscription", invoice.subscription)
    if sub is not None and getattr(sub, "_emu_default_pm", None):
        return str(sub._emu_default_pm)
    cus = Customer._api_retrieve(invoice.customer)
    source = cus._get_default_payment_method_or_source()
    return source.id if source is not None else None


def _invoice_payment_intent(invoice: Any, payment_method: str | None) -> Any:
    """The invoice's PaymentIntent, created once (amount = invoice total) and reused."""
    pi = _payment_intent_of(invoice)
    if pi is None or pi.status in ("canceled", "succeeded"):
        pi = PaymentIntent(
            amount=invoice.total,
            currency=invoice.currency,
            customer=invoice.customer,
            payment_method=payment_method,
        )
        pi.invoice = invoice.id
        invoice.payment_intent = pi.id
    elif payment_method:
        pi.payment_method = payment_method
    return pi


def _ready_to_confirm(pi: Any, payment_method: str | None) -> None:
    """Let a PaymentIntent be confirmed again (after a decline, a failed authentication
    or a pending authentication): localstripe allows only one confirmation."""
    if payment_method:
        pi.payment_method = payment_method
    pi.latest_charge = None
    pi.next_action = None
    pi._authentication_failed = False


def _report_decline(pi: Any) -> None:
    _emit("payment_intent.payment_failed", pi)
    invoice = _get("invoice", pi.invoice)
    if invoice is not None:
        invoice.attempt_count = getattr(invoice, "attempt_count", 0) + 1
        _emit("invoice.payment_failed", invoice)


def _decline_error(pi: Any) -> UserError:
    charge = pi.latest_charge
    return _card_error(
        charge.failure_message if charge else "Your card was declined.",
        (charge.failure_code if charge else None) or "card_declined",
        decline_code="generic_decline",
        charge=charge.id if charge else None,
        payment_intent=pi._export(),
    )


def attempt_payment(invoice: Any, payment_method: str | None = None) -> str:
    """Finalize and try to pay off-session. Returns "paid", "processing",
    "requires_action", "declined" or "requires_payment_method" (no card at all)."""
    finalize(invoice)
    if invoice.status == "paid":
        return "paid"
    pm = payment_method or _default_payment_method(invoice)
    pi = _invoice_payment_intent(invoice, pm)
    if not pi.payment_method:
        return "requires_payment_method"
    _ready_to_confirm(pi, pm)
    pi._confirm(on_failure_now=lambda: _report_decline(pi))
    return {
        "succeeded": "paid",
        "processing": "processing",
        "requires_action": "requires_action",
    }.get(pi.status, "declined")


def _payment_error(invoice: Any, outcome: str, action_code: str) -> UserError:
    pi = _payment_intent_of(invoice)
    if outcome == "requires_action":
        return _card_error(
            "This payment requires additional user action before it can be "
            "completed successfully. Confirm the PaymentIntent with Stripe.js.",
            action_code,
            payment_intent=pi._export() if pi else None,
        )
    if outcome == "requires_payment_method":
        return _bad_request(
            "This customer has no attached payment source or default payment method.",
            code="resource_missing",
        )
    return _decline_error(pi)


def _api_pay_invoice(
    id: str,
    payment_method: Any = None,
    off_session: Any = None,
    paid_out_of_band: Any = None,
    source: Any = None,
    **kwargs: Any,
) -> Any:
    """Pay an invoice: 402 `invoice_payment_intent_requires_action` for a 3-D Secure card,
    402 `card_declined` for a declined one; the invoice stays open either way."""
    _unexpected(kwargs)
    _check(not try_convert_to_bool(paid_out_of_band), "paid_out_of_band is not emulated")
    invoice = Invoice._api_retrieve(id)
    if invoice.status == "paid":
        raise _bad_request("Invoice is already paid", code="invoice_already_paid")
    if invoice.status not in ("draft", "open"):
        raise _bad_request(
            f"You cannot pay this invoice because it is {invoice.status}.",
            code="invoice_not_editable",
        )
    method = payment_method or source
    if method is not None:
        method = PaymentMethod._api_retrieve(method).id  # 404 if missing
    outcome = attempt_payment(invoice, method)
    if outcome not in ("paid", "processing"):
        raise _payment_error(invoice, outcome, "invoice_payment_intent_requires_action")
    return invoice


def _on_payment_success(self: Any) -> None:
    """An invoice is paid: `invoice.paid` + `invoice.payment_succeeded`, and its
    subscription becomes active (and takes its pending update, if this invoice had one)."""
    if getattr(self, "_emu_paid_handled", False):
        return
    self._emu_paid_handled = True
    self._draft = False
    self.status_transitions["paid_at"] = _now()
    _emit("invoice.paid", self)
    _emit("invoice.payment_succeeded", self)
    sub = _get("subscription", self.subscription)
    if sub is not None:
        _subscription_invoice_paid(sub, self)


def _on_payment_failure(self: Any) -> None:
    # localstripe deletes or cancels the subscription here; Stripe leaves the
    # invoice open and the subscription as it is (the caller decides).
    _emit("invoice.payment_failed", self)


def _install_invoice_payment() -> None:
    Invoice._finalize = finalize
    Invoice._on_payment_success = _on_payment_success
    Invoice._on_payment_failure_now = _on_payment_failure
    Invoice._on_payment_failure_later = _on_payment_failure
    Invoice._api_create = classmethod(_api_create_invoice)


# Payment intents (Stripe API: Confirm a PaymentIntent) -----------------------------------

_original_pi_confirm = PaymentIntent._confirm


def _pi_confirm(self: Any, on_failure_now: Any) -> None:
    _original_pi_confirm(self, on_failure_now)
    if self.next_action:  # a 3-D Secure card: every payment needs authentication
        _emit("payment_intent.requires_action", self)
        invoice = _get("invoice", self.invoice)
        if invoice is not None:
            _emit("invoice.payment_action_required", invoice)


_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def _api_confirm_payment_intent(
    id: str,
    payment_method: Any = None,
    payment_method_data: Any = None,
    client_secret: Any = None,
    off_session: Any = None,
    return_url: Any = None,
    use_stripe_sdk: Any = None,
    setup_future_usage: Any = None,
    error_on_requires_action: Any = None,
    mandate_data: Any = None,
    **kwargs: Any,
) -> Any:
    """Confirm with an optional `payment_method` (or `payment_method_data`, as Stripe.js
    sends for a card element); a decline is a 402 carrying the PaymentIntent."""
    _unexpected(kwargs)
    pi = PaymentIntent._api_retrieve(id)
    if client_secret is not None and client_secret != pi.client_secret:
        raise _bad_request(
            "The client_secret provided does not match the client_secret "
            "associated with the PaymentIntent.",
            param="client_secret",
        )
    if pi.status not in _CONFIRMABLE:
        raise UserError(
            400,
            f"This PaymentIntent's status is {pi.status}, so it cannot be confirmed.",
            {"code": "payment_intent_unexpected_state", "payment_intent": pi._export()},
        )
    if payment_method_data is not None:
        _check(isinstance(payment_method_data, dict), "Invalid payment_method_data")
        data = {
            k: v for k, v in payment_method_data.items() if k in ("type", "card", "billing_details")
        }
        payment_method = PaymentMethod(**data).id
    elif payment_method is not None:
        payment_method = PaymentMethod._api_retrieve(payment_method).id  # 404 if missing
    if not (payment_method or pi.payment_method):
        raise UserError(
            400,
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            {"code": "payment_intent_unexpected_state", "payment_intent": pi._export()},
        )
    _ready_to_confirm(pi, payment_method)

    def declined() -> None:
        _report_decline(pi)
        raise _decline_error(pi)

    pi._confirm(on_failure_now=declined)
    return pi


def _api_authenticate(
    id: str, client_secret: Any = None, success: Any = False, **kwargs: Any
) -> Any:
    """localstripe's 3-D Secure stand-in. A failed authentication leaves the PaymentIntent
    `requires_payment_method`, its invoice open and its subscription untouched."""
    _unexpected(kwargs)
    success = try_convert_to_bool(success)
    _check(isinstance(client_secret, str) and isinstance(success, bool), "Bad request")
    pi = PaymentIntent._api_retrieve(id)
    if client_secret != pi.client_secret:
        raise UserError(401, "Unauthorized")
    if pi.status != "requires_action":
        raise UserError(
            400,
            f"This PaymentIntent's status is {pi.status}, not requires_action.",
            {"code": "payment_intent_unexpected_state"},
        )
    pi.next_action = None
    if success:

        def declined() -> None:
            _report_decline(pi)
            raise _decline_error(pi)

        pi._create_charge(on_failure_now=declined)
    else:
        pi._authentication_failed = True
        pi.payment_method = None
        _report_decline(pi)
    return pi


def _install_payment_intents() -> None:
    PaymentIntent._confirm = _pi_confirm
    _override("POST", "/v1/payment_intents/{id}/confirm", _api_confirm_payment_intent)
    _override("POST", "/v1/payment_intents/{id}/_authenticate", _api_authenticate)
    _override("POST", "/v1/invoices/{id}/pay", _api_pay_invoice)


# Subscription fields (Stripe API: The Subscription object) -------------------------------

FEEDBACK = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)


def _cancellation_details(value: Any, current: dict[str, Any]) -> dict[str, Any]:
    """Subscriptions › cancellation_details: comment and feedback (Stripe's enum); "" clears."""
    _check(
        isinstance(value, dict) and set(value) <= {"comment", "feedback"},
        "Invalid cancellation_details",
        "cancellation_details",
    )
    details = dict(current)
    if "comment" in value:
        comment = value["comment"]
        _check(
            isinstance(comment, str) and len(comment) <= 5000,
            "Invalid comment",
            "cancellation_details[comment]",
        )
        details["comment"] = comment or None
    if "feedback" in value:
        feedback = value["feedback"]
        _check(
            feedback in FEEDBACK or feedback == "",
            "Invalid feedback: must be one of " + ", ".join(FEEDBACK),
            "cancellation_details[feedback]",
        )
        details["feedback"] = feedback or None
    return details


def _details_of(sub: Any) -> dict[str, Any]:
    return dict(
        getattr(sub, "_emu_cancellation", None)
        or {"comment": None, "feedback": None, "reason": None}
    )


def _pending_update_view(sub: Any) -> dict[str, Any] | None:
    """Billing › Pending updates: what will apply once the invoice is paid."""
    pending = _live_pending_update(sub)
    if pending is None:
        return None
    item = _get("subscription_item", pending["item"])
    plan = Plan._api_retrieve(pending["plan"])
    return {
        "subscription_items": [
            {
                "id": pending["item"],
                "object": "subscription_item",
                "price": price_view(plan),
                "plan": plan._export(),
                "quantity": pending["quantity"],
                "subscription": sub.id,
                "metadata": dict(item.metadata) if item is not None else {},
            }
        ],
        "expires_at": pending["expires_at"],
        "billing_cycle_anchor": None,
        "trial_end": None,
        "trial_from_plan": None,
    }


def _live_pending_update(sub: Any) -> dict[str, Any] | None:
    pending = getattr(sub, "_emu_pending", None)
    if pending and pending["expires_at"] <= _now():  # expired: discarded
        sub._emu_pending = pending = None
    return pending


def _validate_payment_method(pm: Any, param: str) -> str | None:
    if pm in (None, ""):
        return None
    _check(isinstance(pm, str), "Invalid payment method", param)
    return str(PaymentMethod._api_retrieve(pm).id)  # 404 if missing


def _install_subscription_fields() -> None:
    Subscription.default_payment_method = property(
        lambda self: getattr(self, "_emu_default_pm", None)
    )
    Subscription.cancellation_details = property(_details_of)
    Subscription.pending_update = property(_pending_update_view)


# Subscription create (Stripe API: Create a subscription › payment_behavior) ---------------

PAYMENT_BEHAVIORS = (
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
)

_original_subscription_init = Subscription.__init__


def _subscription_init(
    self: Any,
    customer: Any = None,
    items: Any = None,
    plan: Any = None,
    quantity: Any = None,
    payment_behavior: Any = "allow_incomplete",
    default_payment_method: Any = None,
    off_session: Any = None,
    collection_method: Any = None,
    description: Any = None,
    **kwargs: Any,
) -> None:
    _check(
        payment_behavior in ("allow_incomplete", "default_incomplete", "error_if_incomplete"),
        "Invalid payment_behavior",
        "payment_behavior",
    )
    _check(
        collection_method in (None, "charge_automatically"), "Only charge_automatically is emulated"
    )
    if items is None and plan is not None:
        items = [{"plan": plan, "quantity": quantity}]
    _check(
        isinstance(items, list) and all(isinstance(i, dict) for i in items),
        "Invalid items",
        "items",
    )
    items = [_plan_of(item, "items") for item in items]
    # Set before localstripe's __init__, which ends by creating the first invoice.
    self._emu_create_behavior = payment_behavior
    self._emu_default_pm = _validate_payment_method(
        default_payment_method, "default_payment_method"
    )
    self._emu_quiet = True
    try:
        _original_subscription_init(self, customer=customer, items=items, **kwargs)
    finally:
        self._emu_quiet = False
    self.description = description
    # Billing › Billing cycle: the anchor is the start unless one was given.
    self.billing_cycle_anchor = self.billing_cycle_anchor or self.start_date


def _first_invoice(self: Any) -> None:
    """The subscription's first invoice, paid according to `payment_behavior`:
    default_incomplete leaves its PaymentIntent unconfirmed (status `incomplete`);
    error_if_incomplete answers 402 and leaves nothing; allow_incomplete leaves it open."""
    behavior = getattr(self, "_emu_create_behavior", "allow_incomplete")
    self.billing_cycle_anchor = self.billing_cycle_anchor or self.start_date
    invoice = new_invoice(
        self.customer,
        self,
        list(self.items._list),
        sweep="customer",
        billing_reason="subscription_create",
        date=self.current_period_start,
    )
    for (
        item
    ) in self.items._list:  # localstripe marks invoiced items; Stripe's items have no `invoice`
        vars(item).pop("invoice", None)
    finalize(invoice)
    if invoice.status == "paid":
        self.status = "active"
        return
    if behavior == "default_incomplete":
        _invoice_payment_intent(invoice, _default_payment_method(invoice))
        return
    outcome = attempt_payment(invoice)
    if outcome in ("paid", "processing"):
        self.status = "active"
    elif behavior == "error_if_incomplete":
        error = _payment_error(invoice, outcome, "subscription_payment_intent_requires_action")
        _forget_failed_subscription(self, invoice)
        raise error


def _forget_failed_subscription(sub: Any, invoice: Any) -> None:
    """error_if_incomplete: the subscription is not created, so nothing of it remains."""
    pi = _payment_intent_of(invoice)
    if pi is not None:
        pi._canceled = True
        pi.next_action = None
    for line in invoice.lines._list:
        ii = _get("invoiceitem", getattr(line, "invoice_item", None))
        if ii is not None:
            ii.invoice = None  # pending items return to pending
        store.pop(f"line_item:{line.id}", None)
    for item in sub.items._list:
        store.pop(f"subscription_item:{item.id}", None)
    store.pop(f"invoice:{invoice.id}", None)
    store.pop(f"subscription:{sub.id}", None)


# Subscription update (Stripe API: Update a subscription) ---------------------------------


@dataclass
class ItemChange:
    item: Any
    new_plan: Any
    new_quantity: int

    @property
    def old_plan(self) -> Any:
        return self.item.plan

    @property
    def old_quantity(self) -> int:
        return int(self.item.quantity)

    @property
    def changed(self) -> bool:
        return (self.new_plan.id, self.new_quantity) != (self.old_plan.id, self.old_quantity)

    @property
    def interval_change(self) -> bool:
        return (self.new_plan.interval, self.new_plan.interval_count) != (
            self.old_plan.interval,
            self.old_plan.interval_count,
        )


@dataclass
class LineSpec:
    amount: int
    description: str
    plan: Any
    quantity: int
    start: int
    end: int
    proration: bool


def parse_item_change(sub: Any, items: Any) -> ItemChange | None:
    """The one item of `items` (`{id?, price|plan?, quantity?}`) against the current item."""
    if items is None:
        return None
    _check(
        isinstance(items, list) and all(isinstance(i, dict) for i in items),
        "Invalid items",
        "items",
    )
    if len(items) != 1:
        raise UserError(500, "Not implemented: the emulator handles one subscription item")
    item = _plan_of(items[0], "items")
    current = sub.items._list[0]
    if item.get("id") is not None and item["id"] != current.id:
        raise _bad_request(f"Invalid subscription_item id: {item['id']}", param="items[0][id]")
    quantity = try_convert_to_int(item.get("quantity", current.quantity))
    _check(isinstance(quantity, int) and quantity > 0, "Invalid quantity", "items[0][quantity]")
    plan = Plan._api_retrieve(item.get("plan") or current.plan.id)  # 404 if missing
    _check(plan.currency == current.plan.currency, "The new price must have the same currency")
    return ItemChange(current, plan, quantity)


def change_lines(
    sub: Any, change: ItemChange, proration_behavior: str, proration_date: int, now: int
) -> list[LineSpec]:
    """Billing › Prorations: the lines a change at `proration_date` creates.

    Inside the current period [start, end), f = (end - p) / (end - start): a credit
    "Unused time" of the old price and quantity and, for the same interval, a debit
    "Remaining time" of the new ones, both over [p, end]. An interval change
    (Billing › Billing cycle) adds the new price's full period from now instead.
    """
    start, end = sub.current_period_start, sub.current_period_end
    p = min(max(proration_date, start), end)
    fraction = Fraction(end - p, end - start) if end > start else Fraction(0)
    old, new = change.old_plan, change.new_plan
    lines = []
    if proration_behavior != "none" and fraction > 0:
        credit = _round_half_up(_amount_for(old, change.old_quantity) * fraction)
        lines.append(
            LineSpec(
                -credit,
                f"Unused time on {change.old_quantity} × {_product_name(old)} after {_day(p)}",
                old,
                change.old_quantity,
                p,
                end,
                True,
            )
        )
        if not change.interval_change:
            debit = _round_half_up(_amount_for(new, change.new_quantity) * fraction)
            lines.append(
                LineSpec(
                    debit,
                    f"Remaining time on {change.new_quantity} × {_product_name(new)} after "
                    f"{_day(p)}",
                    new,
                    change.new_quantity,
                    p,
                    end,
                    True,
                )
            )
    if change.interval_change:
        lines.append(_full_period_line(new, change.new_quantity, now))
    return lines


def _full_period_line(plan: Any, quantity: int, start: int) -> LineSpec:
    amount = _amount_for(plan, quantity)
    return LineSpec(
        amount,
        f"{quantity} × {_product_name(plan)} (at {plan.amount / 100:.2f} "
        f"{plan.currency.upper()} / {plan.interval})",
        plan,
        quantity,
        start,
        _add_interval(start, plan),
        False,
    )


def make_invoice_items(sub: Any, item_id: str, specs: list[LineSpec]) -> list[Any]:
    items = []
    for spec in specs:
        ii = InvoiceItem(
            subscription=sub.id,
            plan=spec.plan.id,
            amount=spec.amount,
            currency=spec.plan.currency,
            customer=sub.customer,
            period_start=spec.start,
            period_end=spec.end,
            proration=spec.proration,
            description=spec.description,
        )
        ii.quantity = spec.quantity
        ii._emu_subscription_item = item_id
        ii._emu_line_type = "invoiceitem" if spec.proration else "subscription"
        items.append(ii)
    return items


def _apply_change(sub: Any, item_id: str, plan_id: str, quantity: int, anchor: int | None) -> None:
    # The item keeps its id, as on Stripe (localstripe made a new item).
    item = SubscriptionItem._api_retrieve(item_id)
    item.plan = Plan._api_retrieve(plan_id)
    item.quantity = quantity
    sub.quantity = quantity
    if anchor is not None:
        sub._emu_anchor = sub.billing_cycle_anchor = anchor


@dataclass
class UpdateParams:
    proration_behavior: str
    proration_date: int
    payment_behavior: str


def _parse_update_behaviors(
    prorate: Any, proration_behavior: Any, proration_date: Any, payment_behavior: Any
) -> UpdateParams:
    prorate = try_convert_to_bool(prorate)
    proration_date = try_convert_to_int(proration_date)
    if proration_behavior is None:
        proration_behavior = "none" if prorate is False else "create_prorations"
    _check(
        proration_behavior in ("create_prorations", "none", "always_invoice"),
        "Invalid proration_behavior",
        "proration_behavior",
    )
    _check(
        proration_date is None or (isinstance(proration_date, int) and proration_date > 1500000000),
        "Invalid proration_date",
        "proration_date",
    )
    payment_behavior = payment_behavior or "allow_incomplete"
    _check(payment_behavior in PAYMENT_BEHAVIORS, "Invalid payment_behavior", "payment_behavior")
    return UpdateParams(proration_behavior, proration_date or _now(), payment_behavior)


def _change_items(sub: Any, change: ItemChange, params: UpdateParams, pay_with: str | None) -> None:
    """Apply an item change with its prorations and `payment_behavior`."""
    now = _now()
    lines = change_lines(sub, change, params.proration_behavior, params.proration_date, now)
    anchor = now if change.interval_change else None
    immediate = change.interval_change or params.proration_behavior == "always_invoice"
    if not immediate:
        if params.proration_behavior == "create_prorations":
            make_invoice_items(sub, change.item.id, lines)  # picked up by the next invoice
        _apply_change(sub, change.item.id, change.new_plan.id, change.new_quantity, anchor)
        return

    previous_latest = sub.latest_invoice
    invoice = new_invoice(
        sub.customer,
        sub,
        make_invoice_items(sub, change.item.id, lines),
        sweep="subscription",
        billing_reason="subscription_update",
    )
    finalize(invoice)
    if params.payment_behavior == "default_incomplete":
        outcome = "paid" if invoice.status == "paid" else "awaiting_confirmation"
        if outcome != "paid":
            _invoice_payment_intent(invoice, pay_with or _default_payment_method(invoice))
    else:
        outcome = attempt_payment(invoice, pay_with)
    if outcome in ("paid", "processing"):
        _apply_change(sub, change.item.id, change.new_plan.id, change.new_quantity, anchor)
        return

    if params.payment_behavior == "pending_if_incomplete":
        sub._emu_pending = {
            "invoice": invoice.id,
            "item": change.item.id,
            "plan": change.new_plan.id,
            "quantity": change.new_quantity,
            "anchor": anchor,
            "expires_at": now + 23 * 3600,
        }
    elif params.payment_behavior == "error_if_incomplete":
        error = _payment_error(invoice, outcome, "subscription_payment_intent_requires_action")
        _void(invoice)
        sub.latest_invoice = previous_latest  # nothing of the update applies
        raise error
    else:  # allow_incomplete, default_incomplete: applied, the invoice is left to pay
        _apply_change(sub, change.item.id, change.new_plan.id, change.new_quantity, anchor)
        sub.status = "past_due"


def _api_update_subscription(cls: Any, id: str, **data: Any) -> Any:
    sub = cls._api_retrieve(id)
    before = _snapshot(sub)
    sub._emu_quiet = True
    try:
        _update_subscription(sub, **data)
    finally:
        sub._emu_quiet = False
    after = _snapshot(sub)
    if after != before:
        _emit("customer.subscription.updated", sub, _changed_attributes(before, after))
    return sub


def _update_subscription(
    sub: Any,
    metadata: Any = None,
    items: Any = None,
    plan: Any = None,
    quantity: Any = None,
    prorate: Any = None,
    proration_behavior: Any = None,
    proration_date: Any = None,
    payment_behavior: Any = None,
    cancel_at_period_end: Any = None,
    cancel_at: Any = None,
    cancellation_details: Any = None,
    default_payment_method: Any = None,
    trial_end: Any = None,
    default_tax_rates: Any = None,
    tax_percent: Any = None,
    description: Any = None,
    off_session: Any = None,
    enable_incomplete_payments: Any = None,
    **kwargs: Any,
) -> None:
    _unexpected(kwargs)
    # Validate everything before changing anything.
    if sub.status in ("canceled", "incomplete_expired"):
        _check(
            items is None
            and plan is None
            and cancel_at_period_end is None
            and cancel_at is None
            and default_payment_method is None,
            "A canceled subscription can only update its cancellation_details and metadata.",
        )
    if items is None and plan is not None:
        items = [{"plan": plan, "quantity": quantity}]
    change = parse_item_change(sub, items)
    params = _parse_update_behaviors(prorate, proration_behavior, proration_date, payment_behavior)
    cancel_at_period_end = try_convert_to_bool(cancel_at_period_end)
    _check(
        cancel_at_period_end is None or isinstance(cancel_at_period_end, bool),
        "Invalid cancel_at_period_end",
        "cancel_at_period_end",
    )
    cancel_at = None if cancel_at in (None, "") else try_convert_to_int(cancel_at)
    _check(cancel_at is None or isinstance(cancel_at, int), "Invalid cancel_at", "cancel_at")
    _check(metadata is None or isinstance(metadata, dict), "Invalid metadata", "metadata")
    details = (
        _cancellation_details(cancellation_details, _details_of(sub))
        if cancellation_details is not None
        else None
    )
    new_pm = _validate_payment_method(default_payment_method, "default_payment_method")
    trial_end = try_convert_to_int(trial_end)
    if (cancel_at_period_end is not None or cancel_at is not None) and _schedule_of(sub):
        raise _bad_request(
            f"The subscription is managed by the subscription schedule `{sub._emu_schedule}`, "
            "and updating any cancelation behavior directly is not allowed. Please update the "
            "schedule instead."
        )

    if change is not None and change.changed:
        _change_items(sub, change, params, new_pm or getattr(sub, "_emu_default_pm", None))
    if default_payment_method is not None:
        sub._emu_default_pm = new_pm
    if metadata:
        sub.metadata.update(metadata)
    if cancel_at_period_end is not None:
        sub.cancel_at_period_end = cancel_at_period_end
        sub.cancel_at = sub.current_period_end if cancel_at_period_end else None
    if cancel_at is not None:
        sub.cancel_at = cancel_at
    if details is not None:
        sub._emu_cancellation = details
    if trial_end is not None:
        sub.trial_end = trial_end
    if tax_percent is not None:
        sub.tax_percent = float(tax_percent)
    if default_tax_rates is not None:
        sub.default_tax_rates = [resources.TaxRate._api_retrieve(tr) for tr in default_tax_rates]
    if description is not None:
        sub.description = description


# Payments settle subscriptions (Billing › Pending updates; Subscriptions › status) ---------


def _subscription_invoice_paid(sub: Any, invoice: Any) -> None:
    before = None if getattr(sub, "_emu_quiet", False) else _snapshot(sub)
    pending = _live_pending_update(sub)
    if pending is not None and pending["invoice"] == invoice.id:
        _apply_change(sub, pending["item"], pending["plan"], pending["quantity"], pending["anchor"])
        sub._emu_pending = None
    if sub.status in ("incomplete", "past_due") and not _open_invoices(sub, besides=invoice):
        sub.status = "active"
    if before is not None:
        after = _snapshot(sub)
        if after != before:
            _emit("customer.subscription.updated", sub, _changed_attributes(before, after))


def _open_invoices(sub: Any, besides: Any = None) -> list[Any]:
    return [
        inv
        for k, inv in list(store.items())
        if k.startswith("invoice:")
        and inv.subscription == sub.id
        and inv is not besides
        and inv.status == "open"
    ]


# Invoice void (Stripe API: Void an invoice) -----------------------------------------------


def _void(invoice: Any) -> None:
    pi = _payment_intent_of(invoice)
    if pi is not None and pi.status in _CONFIRMABLE + ("requires_capture",):
        pi._canceled = True
        pi.next_action = None
        _emit("payment_intent.canceled", pi)
    invoice._draft = False
    invoice._voided = True
    invoice.status_transitions["voided_at"] = _now()
    _emit("invoice.voided", invoice)
    sub = _get("subscription", invoice.subscription)
    if sub is None:
        return
    before = _snapshot(sub)
    pending = getattr(sub, "_emu_pending", None)
    if pending and pending["invoice"] == invoice.id:  # the pending update is discarded
        sub._emu_pending = None
    if sub.status == "incomplete" and invoice.billing_reason in ("subscription_create", None):
        sub.status = "incomplete_expired"
        sub.ended_at = _now()
    after = _snapshot(sub)
    if after != before and not getattr(sub, "_emu_quiet", False):
        _emit("customer.subscription.updated", sub, _changed_attributes(before, after))


def _api_void_invoice(id: str, **kwargs: Any) -> Any:
    _unexpected(kwargs)
    invoice = Invoice._api_retrieve(id)
    if invoice.status != "open":
        raise _bad_request(
            f"You can only void open invoices; this one is {invoice.status}.",
            code="invoice_not_editable",
        )
    _void(invoice)
    return invoice


# Subscription cancel (Stripe API: Cancel a subscription) -----------------------------------


def cancel_subscription(
    sub: Any, cancellation_details: Any = None, invoice_now: Any = None, prorate: Any = None
) -> Any:
    invoice_now = try_convert_to_bool(invoice_now)
    prorate = try_convert_to_bool(prorate)
    _check(invoice_now in (None, True, False) and prorate in (None, True, False), "Bad request")
    if sub.status == "canceled":
        raise _bad_request("This subscription is already canceled.", code="resource_missing")
    details = _details_of(sub)
    if cancellation_details is not None:
        details = _cancellation_details(cancellation_details, details)
    now = _now()
    if prorate and sub.status in ("active", "past_due"):  # credit for the unused time
        item = sub.items._list[0]
        change = ItemChange(item, item.plan, int(item.quantity))
        start, end = sub.current_period_start, sub.current_period_end
        lines = (
            [
                line
                for line in change_lines(sub, change, "create_prorations", now, now)
                if line.amount < 0
            ]
            if start <= now < end
            else []
        )
        make_invoice_items(sub, item.id, lines)
    if invoice_now and [ii for ii in _pending_items(sub.customer) if ii.subscription == sub.id]:
        final = new_invoice(
            sub.customer, sub, [], sweep="subscription", billing_reason="subscription_cycle"
        )
        attempt_payment(final)
    for invoice in _open_invoices(sub):
        if sub.status == "incomplete" or invoice.billing_reason == "subscription_create":
            _void(invoice)  # an incomplete subscription's first invoice is voided with it
    sub._emu_pending = None
    sub.status = "canceled"
    sub.canceled_at = sub.ended_at = now
    details["reason"] = "cancellation_requested"
    sub._emu_cancellation = details
    _emit("customer.subscription.deleted", sub)
    return sub


def _api_cancel_route(
    id: str,
    cancellation_details: Any = None,
    invoice_now: Any = None,
    prorate: Any = None,
    **kwargs: Any,
) -> Any:
    _unexpected(kwargs)
    return cancel_subscription(
        Subscription._api_retrieve(id), cancellation_details, invoice_now, prorate
    )


def _api_delete_subscription(cls: Any, id: str) -> Any:
    # localstripe's own callers (e.g. a failed SEPA debit) cancel with no details.
    return cancel_subscription(cls._api_retrieve(id))


def _install_subscriptions() -> None:
    Subscription.__init__ = _subscription_init
    Subscription._create_invoice = _first_invoice
    Subscription._api_update = classmethod(_api_update_subscription)
    Subscription._api_delete = classmethod(_api_delete_subscription)
    _override("DELETE", "/v1/subscriptions/{id}", _api_cancel_route)
    _override("POST", "/v1/invoices/{id}/void", _api_void_invoice)


# Subscription schedules (Stripe API: Subscription Schedules) ---------------------------------
# As far as the Billing Page uses them: a schedule made from a live subscription
# (`from_subscription`), its phases replaced by an update (the current phase kept as it is, then
# the phase from the renewal on), `release`, and the phase change at renewal (below).

SCHEDULE_LIVE = ("not_started", "active")


def _schedule_of(sub: Any) -> Any:
    schedule = _get("subscription_schedule", getattr(sub, "_emu_schedule", None))
    return schedule if schedule is not None and schedule.status in SCHEDULE_LIVE else None


def _phase_of(item: Any, start: int, end: int) -> dict[str, Any]:
    return {
        "start_date": start,
        "end_date": end,
        "items": [{"price": item.plan.id, "plan": item.plan.id, "quantity": int(item.quantity)}],
        "proration_behavior": "create_prorations",
        "metadata": {},
    }


class SubscriptionSchedule(StripeObject):  # type: ignore[misc]
    object = "subscription_schedule"
    _id_prefix = "sub_sched_"

    def __init__(
        self,
        from_subscription: Any = None,
        metadata: Any = None,
        end_behavior: Any = None,
        **kwargs: Any,
    ) -> None:
        _unexpected(kwargs)
        _check(isinstance(from_subscription, str), "Missing from_subscription", "from_subscription")
        _check(end_behavior is None, "end_behavior cannot be set with from_subscription")
        _check(metadata is None or isinstance(metadata, dict), "Invalid metadata", "metadata")
        sub = Subscription._api_retrieve(from_subscription)  # 404 if missing
        _check(
            sub.status in ("active", "past_due", "trialing"),
            "You can only create a schedule from an active subscription.",
            "from_subscription",
        )
        if _schedule_of(sub) is not None:
            raise _bad_request(
                f"You cannot migrate a subscription that is already attached to a schedule: "
                f"`{sub._emu_schedule}`.",
                param="from_subscription",
            )
        super().__init__()
        self.customer = sub.customer
        self.subscription = sub.id
        self.status = "active"
        self.end_behavior = "release"
        self.metadata = dict(metadata or {})
        self.canceled_at = self.completed_at = self.released_at = None
        self.released_subscription = None
        self.phases = [
            _phase_of(sub.items._list[0], sub.current_period_start, sub.current_period_end)
        ]
        sub._emu_schedule = self.id
        _emit("subscription_schedule.created", self)

    @property
    def current_phase(self) -> dict[str, int] | None:
        # Periods roll over on the renew request, not with the clock: the phase it reached.
        if self.status != "active":
            return None
        current = self.phases[getattr(self, "_emu_phase", 0)]
        return {"start_date": current["start_date"], "end_date": current["end_date"]}

    @classmethod
    def _api_update(cls, id: str, **data: Any) -> Any:
        schedule = cls._api_retrieve(id)
        schedule._replace_phases(**data)
        _emit("subscription_schedule.updated", schedule)
        return schedule

    def _replace_phases(
        self,
        phases: Any = None,
        end_behavior: Any = None,
        proration_behavior: Any = None,
        metadata: Any = None,
        **kwargs: Any,
    ) -> None:
        """Update a schedule › phases: the current phase first, with its start_date unchanged;
        each later phase starts where the one before ends (its `end_date` or `duration`)."""
        _unexpected(kwargs)
        _check(self.status in SCHEDULE_LIVE, f"This schedule is {self.status}.")
        _check(end_behavior in (None, "release"), "Only end_behavior=release is emulated")
        _check(proration_behavior in (None, "none"), "Only proration_behavior=none is emulated")
        _check(metadata is None or isinstance(metadata, dict), "Invalid metadata", "metadata")
        if phases is None:
            self.metadata.update(metadata or {})
            return
        _check(isinstance(phases, list) and phases, "Invalid phases", "phases")
        sub = Subscription._api_retrieve(self.subscription)
        current = self.current_phase or {}
        parsed, start = [], None
        for index, raw in enumerate(phases):
            _check(isinstance(raw, dict), "Invalid phases", f"phases[{index}]")
            raw = dict(raw)
            given_start = try_convert_to_int(raw.pop("start_date", None))
            if index == 0:
                _check(
                    given_start == current.get("start_date"),
                    "You can not modify the start date of the current phase.",
                    "phases[0][start_date]",
                )
                start = given_start
            _check(given_start in (None, start), "Phases must be contiguous", f"phases[{index}]")
            items = raw.pop("items", None)
            _check(isinstance(items, list) and len(items) == 1, "Invalid items", "items")
            item = _plan_of(items[0], f"phases[{index}][items]")
            plan = Plan._api_retrieve(item.get("plan"))  # 404 if missing
            quantity = try_convert_to_int(item.get("quantity", 1))
            _check(isinstance(quantity, int) and quantity > 0, "Invalid quantity", "quantity")
            end = try_convert_to_int(raw.pop("end_date", None))
            duration = raw.pop("duration", None)
            if end is None:
                step = types.SimpleNamespace(
                    interval=(duration or {}).get("interval") or plan.interval,
                    interval_count=int((duration or {}).get("interval_count") or 1),
                )
                end = _add_interval(int(start or 0), step)
            _unexpected(raw)
            _check(isinstance(end, int) and end > int(start or 0), "Invalid end_date", "end_date")
            phase = {
                "start_date": start,
                "end_date": end,
                "items": [{"price": plan.id, "plan": plan.id, "quantity": quantity}],
                "proration_behavior": "none",
                "metadata": {},
            }
            parsed.append(phase)
            start = end
        first = parsed[0]["items"][0]
        current_item = sub.items._list[0]
        _check(
            (first["plan"], first["quantity"]) == (current_item.plan.id, current_item.quantity),
            "Not emulated: changing the current phase's items",
        )
        self.phases, self._emu_phase = parsed, 0
        self.metadata.update(metadata or {})


def release_schedule(schedule: Any) -> Any:
    """Release a schedule: the subscription stays as it is and is no longer managed by it."""
    if schedule.status not in SCHEDULE_LIVE:
        raise _bad_request(
            f"You cannot release a subscription schedule that is currently in the "
            f"`{schedule.status}` status. It must be in `not_started` or `active`.",
            code="subscription_schedule_invalid_status",
        )
    schedule.status = "released"
    schedule.released_at = _now()
    schedule.released_subscription = schedule.subscription
    sub = _get("subscription", schedule.subscription)
    if sub is not None:
        before = _snapshot(sub)
        sub._emu_schedule = None
        _emit("customer.subscription.updated", sub, _changed_attributes(before, _snapshot(sub)))
    _emit("subscription_schedule.released", schedule)
    return schedule


def _api_release_schedule(id: str, preserve_cancel_date: Any = None, **kwargs: Any) -> Any:
    _unexpected(kwargs)
    return release_schedule(SubscriptionSchedule._api_retrieve(id))


# Renewal (test tooling; Billing › Subscriptions › How subscriptions work) -------------------------
# The emulator's periods never roll over by themselves. `POST /_config/subscriptions/{id}/renew`
# does what Stripe does at `current_period_end`: a live schedule moves to the phase starting
# there (its items apply with no proration; once its last phase is over it is released), the next
# period starts at the old end, and its invoice (billing_reason `subscription_cycle`, the full
# period at the new price and quantity) is charged off-session to the default card.


def renew_subscription(sub: Any) -> Any:
    _check(sub.status in ("active", "past_due"), "Only a live subscription renews")
    end = sub.current_period_end
    if sub.cancel_at_period_end:
        return cancel_subscription(sub)
    before = _snapshot(sub)
    item = sub.items._list[0]
    schedule = _schedule_of(sub)
    if schedule is not None:
        phase = next((p for p in schedule.phases if p["start_date"] == end), None)
        if phase is not None:
            new = phase["items"][0]
            _apply_change(sub, item.id, new["plan"], int(new["quantity"]), None)
            schedule._emu_phase = schedule.phases.index(phase)
        elif end >= schedule.phases[-1]["end_date"]:
            release_schedule(schedule)  # `end_behavior=release` once its last phase is over
    sub._emu_anchor = sub.billing_cycle_anchor = end
    line = _full_period_line(item.plan, int(item.quantity), end)
    invoice = new_invoice(
        sub.customer,
        sub,
        make_invoice_items(sub, item.id, [line]),
        sweep="subscription",
        billing_reason="subscription_cycle",
    )
    if attempt_payment(invoice) not in ("paid", "processing"):
        sub.status = "past_due"
    _emit("customer.subscription.updated", sub, _changed_attributes(before, _snapshot(sub)))
    return sub


def _api_renew(id: str, **kwargs: Any) -> Any:
    _unexpected(kwargs)
    return renew_subscription(Subscription._api_retrieve(id))


def _install_subscription_schedules() -> None:
    Subscription.schedule = property(
        lambda self: (
            getattr(self, "_emu_schedule", None) if _schedule_of(self) is not None else None
        )
    )
    router = server.app.router
    base = "/v1/subscription_schedules"
    router.add_route("POST", base, server.api_create(SubscriptionSchedule, base))
    router.add_route(
        "POST",
        f"{base}/{{id}}/release",
        server.api_extra(_api_release_schedule, f"{base}/{{id}}/release"),
    )
    router.add_route(
        "GET", f"{base}/{{id}}", server.api_retrieve(SubscriptionSchedule, f"{base}/{{id}}")
    )
    router.add_route(
        "POST", f"{base}/{{id}}", server.api_update(SubscriptionSchedule, f"{base}/{{id}}")
    )
    renew = "/_config/subscriptions/{id}/renew"
    router.add_route("POST", renew, server.api_extra(_api_renew, renew))


# Invoice preview (Stripe API: Create a preview invoice) --------------------------------------


def _api_create_preview(
    customer: Any = None,
    subscription: Any = None,
    subscription_details: Any = None,
    subscription_items: Any = None,
    subscription_proration_date: Any = None,
    subscription_proration_behavior: Any = None,
    automatic_tax: Any = None,
    **kwargs: Any,
) -> Any:
    """The invoice the same update (same proration_date) would create: with always_invoice
    or an interval change, exactly that immediate invoice; otherwise the next renewal
    (with the prorations as pending items)."""
    _unexpected(kwargs)
    details = subscription_details if subscription_details is not None else {}
    _check(isinstance(details, dict), "Invalid subscription_details", "subscription_details")
    items = details.get("items", subscription_items)
    behavior = details.get("proration_behavior", subscription_proration_behavior)
    params = _parse_update_behaviors(
        None, behavior, details.get("proration_date", subscription_proration_date), None
    )
    sub = Subscription._api_retrieve(subscription) if subscription else None
    customer = customer or (sub.customer if sub is not None else None)
    _check(isinstance(customer, str), "Missing customer", "customer")
    Customer._api_retrieve(customer)  # 404 if missing
    if sub is not None and sub.customer != customer:
        raise UserError(404, "No such subscription for customer")
    _check(
        sub is not None or items is not None, "Pass a subscription or subscription_details[items]"
    )

    existing = set(store.keys())
    try:
        invoice = _preview_invoice(customer, sub, items, params)
    finally:
        for key in set(store.keys()) - existing:  # a preview stores nothing
            dict.__delitem__(store, key)
    invoice.id = f"upcoming_{invoice.id}"
    return invoice


def _preview_invoice(customer: str, sub: Any, items: Any, params: UpdateParams) -> Any:
    now = _now()
    if sub is None:  # a new subscription's first invoice
        specs = []
        for raw in items:
            item = _plan_of(raw, "subscription_details[items]")
            plan = Plan._api_retrieve(item.get("plan"))
            specs.append(
                _full_period_line(plan, int(try_convert_to_int(item.get("quantity", 1))), now)
            )
        lines = [_as_item(customer, spec) for spec in specs]
        return new_invoice(customer, None, lines, sweep="customer", simulation=True)

    change = parse_item_change(sub, items)
    item = sub.items._list[0]
    if change is not None and change.changed:
        specs = change_lines(sub, change, params.proration_behavior, params.proration_date, now)
        if change.interval_change or params.proration_behavior == "always_invoice":
            return new_invoice(
                customer,
                sub,
                make_invoice_items(sub, item.id, specs),
                sweep="subscription",
                simulation=True,
            )
        plan, quantity = change.new_plan, change.new_quantity
        if params.proration_behavior == "none":
            specs = []
    else:
        specs, plan, quantity = [], item.plan, int(item.quantity)
    renewal = _full_period_line(plan, quantity, sub.current_period_end)
    invoice = new_invoice(
        customer,
        sub,
        make_invoice_items(sub, item.id, [*specs, renewal]),
        sweep="customer",
        simulation=True,
        date=sub.current_period_end,
    )
    return invoice


def _as_item(customer: str, spec: LineSpec) -> Any:
    ii = InvoiceItem(
        plan=spec.plan.id,
        amount=spec.amount,
        currency=spec.plan.currency,
        customer=customer,
        period_start=spec.start,
        period_end=spec.end,
        proration=spec.proration,
        description=spec.description,
    )
    ii.quantity = spec.quantity
    ii._emu_line_type = "subscription"
    return ii


# Customers (Stripe API: Customers › balance; Customer tax IDs) -----------------------------

TAX_ID_TYPES = {
    # type: (country, pattern) — a light check of Stripe's documented formats.
    "eu_vat": (None, r"^[A-Z]{2}[0-9A-Z+*]{2,13}$"),
    "gb_vat": ("GB", r"^GB[0-9]{9}([0-9]{3})?$"),
    "ch_vat": ("CH", r"^CHE-?[0-9]{3}\.?[0-9]{3}\.?[0-9]{3} ?(MWST|TVA|IVA)$"),
    "us_ein": ("US", r"^[0-9]{2}-?[0-9]{7}$"),
    "nz_gst": ("NZ", r"^[0-9]{8,9}$|^[0-9-]{10,11}$"),
    "au_abn": ("AU", r"^[0-9]{11}$"),
    "es_cif": ("ES", r"^[A-Z0-9][0-9]{7}[A-Z0-9]$"),
    "ca_bn": ("CA", r"^[0-9]{9}$"),
    "no_vat": ("NO", r"^[0-9]{9}MVA$"),
    "in_gst": ("IN", r"^[0-9]{2}[A-Z0-9]{13}$"),
    "jp_cn": ("JP", r"^[0-9]{13}$"),
    "sg_uen": ("SG", r"^[0-9A-Z]{9,10}$"),
    "br_cnpj": ("BR", r"^[0-9]{2}\.[0-9]{3}\.[0-9]{3}/[0-9]{4}-[0-9]{2}$"),
    "za_vat": ("ZA", r"^4[0-9]{9}$"),
    "ae_trn": ("AE", r"^[0-9]{15}$"),
}


def _tax_id_init(
    self: Any,
    country: Any = None,
    customer: Any = None,
    type: Any = None,
    value: Any = None,
    **kwargs: Any,
) -> None:
    """Customer tax IDs › type: the types the Billing Details offer (and localstripe's own)."""
    _unexpected(kwargs)
    _check(type in TAX_ID_TYPES, f"Invalid value for type: {type}", "type")
    if not (isinstance(value, str) and re.match(TAX_ID_TYPES[type][1], value.strip())):
        # Stripe's error code for a malformed number (Error codes › tax_id_invalid).
        raise _bad_request(f"Invalid value for {type}.", code="tax_id_invalid", param="value")
    _check(isinstance(customer, str), "Missing customer", "customer")
    Customer._api_retrieve(customer)  # 404 if missing
    StripeObject.__init__(self)
    self.country = country or TAX_ID_TYPES[type][0] or value[:2]
    self.customer = customer
    self.type = type
    self.value = value.strip()
    status = (
        "unverified" if "111111111" in value else "pending" if "222222222" in value else "verified"
    )
    self.verification = {"status": status, "verified_name": "", "verified_address": ""}


def _api_add_tax_id(id: str, type: Any = None, value: Any = None, **kwargs: Any) -> Any:
    _unexpected(kwargs)
    cus = Customer._api_retrieve(id)
    tax_id = TaxId(customer=id, type=type, value=value)
    cus.tax_ids._list.append(tax_id)
    _emit("customer.tax_id.created", tax_id)
    return tax_id


def _api_list_tax_ids(id: str, limit: Any = None, starting_after: Any = None, **kwargs: Any) -> Any:
    """Customer tax IDs › List all: `limit` and `starting_after` as on Stripe (localstripe
    refused them)."""
    _unexpected(kwargs)
    tax_ids = resources.List(f"/v1/customers/{id}/tax_ids", limit, starting_after)
    tax_ids._list = list(Customer._api_retrieve(id).tax_ids._list)
    return tax_ids


def _set_balance(self: Any, value: Any) -> None:
    value = try_convert_to_int(value)
    _check(isinstance(value, int), "Invalid balance", "balance")
    self.account_balance = -value  # localstripe keeps the credit as a positive number


def _install_customers() -> None:
    TaxId.__init__ = _tax_id_init
    _override("POST", "/v1/customers/{id}/tax_ids", _api_add_tax_id)
    _override("GET", "/v1/customers/{id}/tax_ids", _api_list_tax_ids)
    # Customers › balance (negative is a credit); localstripe calls it account_balance.
    Customer.balance = property(lambda self: -self.account_balance, _set_balance)


# Invoice list (Stripe API: List invoices) -----------------------------------------------------

_original_invoice_list = Invoice._api_list_all.__func__


def _api_list_invoices(
    cls: Any,
    url: str,
    customer: Any = None,
    subscription: Any = None,
    status: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> Any:
    """Newest `created` first (localstripe sorted by a period boundary); `status` filters."""
    _unexpected(kwargs)
    _check(
        status in (None, "draft", "open", "paid", "uncollectible", "void"),
        "Invalid status",
        "status",
    )
    li = _original_invoice_list(
        cls,
        url,
        customer=customer,
        subscription=subscription,
        limit=limit,
        starting_after=starting_after,
    )
    order = {key: i for i, key in enumerate(store.keys())}
    li._list.sort(key=lambda inv: (inv.created, order.get(f"invoice:{inv.id}", 0)), reverse=True)
    if status is not None:
        li._list = [inv for inv in li._list if inv.status == status]
    return li


def _install_invoice_list() -> None:
    Invoice._api_list_all = classmethod(_api_list_invoices)


# Stripe.js (Stripe.js reference › confirmCardPayment) -------------------------------------------

# Like real Stripe.js, confirmCardPayment first confirms the PaymentIntent (with the
# publishable key and the client secret) and shows localstripe's 3-D Secure box only
# when the answer is `requires_action`.
STRIPE_JS_OVERRIDE = r"""
/* billing_app.stripe.emulator: Stripe.js confirmCardPayment as the real one behaves. */
(function () {
  const localstripeStripe = Stripe;

  async function post(path, body) {
    const response = await fetch(LOCALSTRIPE_BASE_API + path, {
      method: 'POST', body: JSON.stringify(body)});
    const json = await response.json().catch(() => ({}));
    return {ok: response.status === 200 && !json.error, json: json};
  }

  function paymentMethodParams(data) {
    const pm = data && data.payment_method;
    if (typeof pm === 'string') {
      return {payment_method: pm};
    }
    if (pm && pm.card) {
      const card = pm.card instanceof Element ? pm.card.value.card : pm.card;
      return {payment_method_data: {type: 'card', card: card,
                                    billing_details: pm.billing_details || {}}};
    }
    return {};
  }

  function settled(intent) {
    if (['succeeded', 'processing', 'requires_capture'].includes(intent.status)) {
      return {paymentIntent: intent};
    }
    const last = intent.last_payment_error || {};
    return {error: {
      type: 'card_error',
      code: last.code || 'payment_intent_authentication_failure',
      message: last.message ||
        'We are unable to authenticate your payment method. Please choose a ' +
        'different payment method and try again.',
      payment_intent: intent}};
  }

  function confirmCardPayment(apiKey) {
    return async function (clientSecret, data) {
      console.log('localstripe: Stripe().confirmCardPayment() (billing_app emulator)');
      try {
        const pi = clientSecret.match(/^(pi_\w+)_secret_/)[1];
        const auth = {key: apiKey, client_secret: clientSecret};
        let answer = await post('/v1/payment_intents/' + pi + '/confirm',
                                Object.assign({}, auth, paymentMethodParams(data)));
        if (!answer.ok) {
          const error = answer.json.error || {message: 'Unknown error'};
          const intent = error.payment_intent;
          if (error.code === 'payment_intent_unexpected_state' && intent &&
              intent.status === 'succeeded') {
            return {paymentIntent: intent};
          }
          return {error: error};
        }
        if (answer.json.status === 'requires_action') {
          const success = await openModal(
            '3D Secure\nDo you want to confirm or cancel?',
            'Complete authentication', 'Fail authentication');
          answer = await post(
            '/v1/payment_intents/' + pi + '/_authenticate?success=' + success, auth);
          if (!answer.ok) {
            return {error: answer.json.error || {message: 'Unknown error'}};
          }
        }
        return settled(answer.json);
      } catch (err) {
        return {error: {message: String((err && err.message) || err)}};
      }
    };
  }

  Stripe = function (apiKey, options) {
    const stripe = localstripeStripe(apiKey, options);
    stripe.confirmCardPayment = confirmCardPayment(apiKey);
    stripe.handleCardPayment = function (clientSecret) {  // deprecated alias
      return stripe.confirmCardPayment(clientSecret);
    };
    return stripe;
  };
})();
"""


def stripe_js() -> str:
    """localstripe's fake Stripe.js with our `confirmCardPayment` appended."""
    original = Path(resources.__file__).with_name("localstripe-v3.js").read_text()
    return original + "\n" + STRIPE_JS_OVERRIDE


async def _serve_stripe_js(request: web.Request) -> web.Response:
    return web.Response(text=stripe_js(), content_type="application/javascript")


# Idempotent requests (Stripe API: Idempotent requests) ---------------------------------------

IDEMPOTENCY_TTL = 24 * 3600


@dataclass
class _Replay:
    expires_at: float
    fingerprint: str
    status: int
    body: bytes
    content_type: str


_replays: dict[str, _Replay] = {}
_in_flight: set[str] = set()


def _request_fingerprint(request: web.Request, body: bytes) -> str:
    """The request's parameters, order-insensitive (form or JSON body, and the query)."""
    try:
        params: Any = json.loads(body) if body.strip().startswith(b"{") else None
    except ValueError:
        params = None
    if params is None:
        params = sorted(
            urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        )
    canonical = json.dumps(
        [request.method, request.path, sorted(request.query.items()), params],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _idempotency_error(status: int, message: str, code: str | None = None) -> web.Response:
    error: dict[str, Any] = {"type": "idempotency_error", "message": message}
    if code:
        error["code"] = code
    return server.json_response({"error": error}, status=status)


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """A POST with an `Idempotency-Key` is answered once; the same key with the same
    parameters replays that answer for 24 h, with other parameters it is a 400."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    now = time.time()
    for old in [k for k, r in _replays.items() if r.expires_at <= now]:
        del _replays[old]
    fingerprint = _request_fingerprint(request, await request.read())
    stored = _replays.get(key)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            return _idempotency_error(
                400,
                "Keys for idempotent requests can only be used with the same "
                "parameters they were first used with. Try using a key other "
                f"than '{key}' if you meant to execute a different request.",
            )
        return web.Response(
            body=stored.body,
            status=stored.status,
            content_type=stored.content_type,
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
        )
    if key in _in_flight:
        return _idempotency_error(
            409,
            "There is currently another in-progress request using this Stripe-Idempotency-Key.",
            code="idempotency_key_in_use",
        )
    _in_flight.add(key)
    try:
        response = await handler(request)
    finally:
        _in_flight.discard(key)
    body = getattr(response, "body", None)
    # Our own 5xx (the request may be retried) and 401s (no account) are not kept.
    if isinstance(body, bytes) and response.status < 500 and response.status != 401:
        _replays[key] = _Replay(
            now + IDEMPOTENCY_TTL, fingerprint, response.status, body, response.content_type
        )
        response.headers["Idempotency-Key"] = key
    return response


async def _flush_store(request: web.Request) -> web.Response:
    """`DELETE /_config/data` (localstripe's reset) also forgets the replays."""
    _replays.clear()
    return await server.flush_store(request)


# Authentication with a publishable key (Stripe.js confirms a PaymentIntent) -------------------

_CONFIRM_PATH = re.compile(r"^/v1/payment_intents/(\w+)/confirm$")


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """localstripe's auth, plus: `/v1/payment_intents/{id}/confirm` may be called with a
    publishable `key` and the PaymentIntent's `client_secret`, as Stripe.js does."""
    match = _CONFIRM_PATH.match(request.path)
    if request.method == "POST" and match and server.get_api_key(request) is None:
        data = await server.get_post_data(request, remove_auth=False) or {}
        pi = _get("payment_intent", match.group(1))
        key = data.get("key")
        if (
            pi is not None
            and isinstance(key, str)
            and key.startswith("pk_")
            and data.get("client_secret") == pi.client_secret
        ):
            return await handler(request)
    return await server.auth_middleware(request, handler)


# Routes ------------------------------------------------------------------------------------------
# localstripe's extra routes captured their functions when its server module was
# imported, so patching a class method does not reach them: they are overridden here.

_overrides: dict[tuple[str, str], Any] = {}


def _override(method: str, path: str, func: Any) -> None:
    _overrides[(method, path)] = server.api_extra(func, path)


@web.middleware
async def override_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    resource = request.match_info.route.resource
    replacement = _overrides.get((request.method, resource.canonical if resource else None))
    return await (replacement or handler)(request)


def _install_routes() -> None:
    router = server.app.router
    for method, url, make in (
        ("POST", "/v1/prices", server.api_create),
        ("GET", "/v1/prices/{id}", server.api_retrieve),
        ("POST", "/v1/prices/{id}", server.api_update),
        ("GET", "/v1/prices", server.api_list_all),
    ):
        router.add_route(method, url, make(Price, url))
    router.add_route(
        "POST",
        "/v1/invoices/{id}/finalize",
        server.api_extra(_api_finalize_invoice, "/v1/invoices/{id}/finalize"),
    )
    _override("POST", "/v1/invoices/create_preview", _api_create_preview)
    _overrides[("GET", "/js.stripe.com/v3/")] = _serve_stripe_js
    _overrides[("DELETE", "/_config/data")] = _flush_store

    middlewares = server.app.middlewares
    middlewares[middlewares.index(server.auth_middleware)] = auth_middleware
    middlewares.insert(0, idempotency_middleware)  # outermost: it keeps error answers too
    middlewares.append(override_middleware)  # innermost: errors and saving still apply
    middlewares.insert(0, latency_middleware)
    router.add_post("/_config/latency", _config_latency)


# Latency injection (test tooling, not a Stripe behaviour) ----------------------------------------
# `POST /_config/latency {"path_prefix", "seconds"}` makes every request whose path starts with the
# prefix wait that long before it is handled (0 removes it): end-to-end tests use it to show that a
# slow payment service never resets what the user typed.

_latencies: dict[str, float] = {}


async def _config_latency(request: web.Request) -> web.Response:
    data = await server.get_post_data(request) or {}
    prefix = str(data.get("path_prefix") or "")
    try:
        seconds = min(max(float(data.get("seconds") or 0), 0.0), 30.0)
    except (TypeError, ValueError):
        raise UserError(400, "seconds must be a number") from None
    if not prefix.startswith("/v1/"):
        raise UserError(400, "path_prefix must start with /v1/")
    if seconds:
        _latencies[prefix] = seconds
    else:
        _latencies.pop(prefix, None)
    return server.json_response({"latencies": _latencies})


@web.middleware
async def latency_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    delay = max(
        (seconds for prefix, seconds in _latencies.items() if request.path.startswith(prefix)),
        default=0.0,
    )
    if delay:
        await asyncio.sleep(delay)
    return await handler(request)


def install() -> None:
    """Extend localstripe (once) before its app starts serving."""
    global _installed
    if _installed:
        return
    _installed = True
    _install_item_fields()
    _install_invoice_fields()
    _install_invoice_payment()
    _install_payment_intents()
    _install_subscription_fields()
    _install_subscriptions()
    _install_customers()
    _install_invoice_list()
    _install_subscription_schedules()
    _install_routes()
