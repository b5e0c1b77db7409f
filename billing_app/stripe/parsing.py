"""Stripe's answers (plain dicts) into snapshots, in either shape: the current API's (prices and
periods on subscription items, `parent.*_details` on lines, `total_taxes`) and the older one
localstripe still sends (`plan`, `current_period_*` on the subscription, `proration`, `tax`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing_app.plans import Interval
from billing_app.stripe.errors import MSG_SERVICE_ERROR, GatewayError
from billing_app.stripe.snapshots import (
    BillingDetails,
    CardSummary,
    InvoiceLine,
    InvoicePayment,
    InvoiceSummary,
    PendingUpdate,
    SubscriptionSnapshot,
)

log = logging.getLogger(__name__)


def timestamp(timestamp: Any) -> datetime | None:
    if timestamp in (None, ""):
        return None
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


def ref_id(ref: Any) -> str | None:
    """An id from a field that is either an id or an expanded object."""
    return ref.get("id") if isinstance(ref, dict) else ref


def first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def unexpected(what: str) -> GatewayError:
    log.error("Unexpected Stripe response: %s", what)
    return GatewayError(MSG_SERVICE_ERROR, code="unexpected_response")


def card_from(pm: dict[str, Any]) -> CardSummary | None:
    card = pm.get("card")
    if not card:
        return None
    return CardSummary(
        payment_method_id=pm["id"],
        brand=str(card.get("brand") or "card"),
        last4=str(card.get("last4") or ""),
        exp_month=int(card["exp_month"]),
        exp_year=int(card["exp_year"]),
    )


def price_of(item: dict[str, Any]) -> tuple[str | None, str | None, int | None, str | None]:
    """(price id, interval, unit amount, currency) of a subscription item, either shape."""
    raw_price, raw_plan = item.get("price"), item.get("plan")
    price: dict[str, Any] = raw_price if isinstance(raw_price, dict) else {}
    plan: dict[str, Any] = raw_plan if isinstance(raw_plan, dict) else {}
    price_id = (
        price.get("id") or (raw_price if isinstance(raw_price, str) else None) or plan.get("id")
    )
    interval = (price.get("recurring") or {}).get("interval") or plan.get("interval")
    amount = first(price.get("unit_amount"), plan.get("amount"))
    currency = price.get("currency") or plan.get("currency")
    return price_id, interval, amount, currency


def pending_update_from(raw: Any) -> PendingUpdate | None:
    if not isinstance(raw, dict):
        return None
    items = raw.get("subscription_items") or []
    if not items:
        return PendingUpdate(None, None)
    item = items[0]
    price_id, _, _, _ = price_of(item)
    quantity = item.get("quantity")
    return PendingUpdate(price_id, int(quantity) if quantity is not None else None)


def subscription_from(sub: dict[str, Any]) -> SubscriptionSnapshot:
    items = (sub.get("items") or {}).get("data") or []
    if not items:
        raise unexpected(f"subscription {sub.get('id')} has no items")
    item = items[0]
    price_id, interval, amount, currency = price_of(item)
    if interval not in tuple(Interval) or not price_id:
        raise unexpected(f"subscription {sub.get('id')} interval {interval!r}")
    return SubscriptionSnapshot(
        id=sub["id"],
        customer_id=str(ref_id(sub.get("customer"))),
        status=sub["status"],
        item_id=item["id"],
        price_id=price_id,
        interval=Interval(interval),
        quantity=int(first(item.get("quantity"), sub.get("quantity"), 1)),
        unit_amount=int(amount or 0),
        currency=str(currency or sub.get("currency")),
        current_period_start=timestamp(
            first(item.get("current_period_start"), sub.get("current_period_start"))
        ),
        current_period_end=timestamp(
            first(item.get("current_period_end"), sub.get("current_period_end"))
        ),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        cancel_at=timestamp(sub.get("cancel_at")),
        latest_invoice_id=ref_id(sub.get("latest_invoice")),
        pending_update=pending_update_from(sub.get("pending_update")),
        default_payment_method=ref_id(sub.get("default_payment_method")),
        created_by=(sub.get("metadata") or {}).get("billing_action"),
        schedule_id=ref_id(sub.get("schedule")),
    )


def next_phase_of(schedule: dict[str, Any]) -> tuple[datetime, str, int] | None:
    """(start, price id, quantity) of the phase after the current one of a live schedule."""
    current_end = timestamp((schedule.get("current_phase") or {}).get("end_date"))
    if schedule.get("status") not in ("active", "not_started") or current_end is None:
        return None
    for phase in schedule.get("phases") or []:
        start = timestamp(phase.get("start_date"))
        if start is None or start < current_end:
            continue
        items = phase.get("items") or []
        price_id = (
            (ref_id(items[0].get("price")) or ref_id(items[0].get("plan"))) if items else None
        )
        if not price_id:
            raise unexpected(f"schedule {schedule.get('id')} has a phase without a price")
        return start, str(price_id), int(items[0].get("quantity") or 1)
    return None


def line_from(line: dict[str, Any]) -> InvoiceLine:
    amount = int(line.get("amount") or 0)
    quantity = int(line.get("quantity") or 1)
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    period = line.get("period") or {}
    return InvoiceLine(
        description=str(line.get("description") or ""),
        quantity=quantity,
        unit_amount=int((Decimal(amount) / quantity).to_integral_value()),
        amount=amount,
        period_start=timestamp(period.get("start")),
        period_end=timestamp(period.get("end")),
        proration=bool(first(details.get("proration"), line.get("proration"), False)),
    )


def tax_of(inv: dict[str, Any]) -> int:
    if inv.get("total_taxes") is not None:
        return sum(int(t.get("amount") or 0) for t in inv["total_taxes"])
    if inv.get("tax") is not None:  # pre-2025 shape, localstripe
        return int(inv["tax"])
    return sum(int(t.get("amount") or 0) for t in inv.get("total_tax_amounts") or [])


def address_lines(address: dict[str, Any] | None) -> tuple[str, ...]:
    if not address:
        return ()
    locality = " ".join(str(address[k]) for k in ("postal_code", "city", "state") if address.get(k))
    lines = (address.get("line1"), address.get("line2"), locality, address.get("country"))
    return tuple(str(line) for line in lines if line)


def invoice_from(
    inv: dict[str, Any], raw_lines: list[dict[str, Any]] | None = None
) -> InvoiceSummary:
    if raw_lines is None:
        raw_lines = list((inv.get("lines") or {}).get("data") or [])
    lines = tuple(line_from(line) for line in raw_lines)
    # The invoice's own period_* is Stripe's "usage period" (for a first invoice:
    # created..created); the service period a user expects is on the lines.
    starts = [line.period_start for line in lines if line.period_start]
    ends = [line.period_end for line in lines if line.period_end]
    return InvoiceSummary(
        id=inv["id"],
        number=inv.get("number") or None,
        created=timestamp(inv["created"]) or datetime.min.replace(tzinfo=UTC),
        period_start=min(starts) if starts else timestamp(inv.get("period_start")),
        period_end=max(ends) if ends else timestamp(inv.get("period_end")),
        status=str(inv.get("status")),
        currency=str(inv.get("currency")),
        subtotal=int(inv.get("subtotal") or 0),
        tax=tax_of(inv),
        total=int(inv.get("total") or 0),
        amount_paid=int(inv.get("amount_paid") or 0),
        amount_due=int(inv.get("amount_due") or 0),
        lines=lines,
        customer_name=str(inv.get("customer_name") or ""),
        customer_email=str(inv.get("customer_email") or ""),
        customer_address=address_lines(inv.get("customer_address")),
        customer_tax_ids=tuple(
            str(tax["value"]) for tax in inv.get("customer_tax_ids") or [] if tax.get("value")
        ),
    )


def intent_id(client_secret: str) -> str:
    return client_secret.split("_secret_", 1)[0]


def payment_from(inv: dict[str, Any], intent: dict[str, Any] | None) -> InvoicePayment:
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


def default_payment_method_of(customer: dict[str, Any]) -> str | dict[str, Any] | None:
    """The customer's default payment method for invoices (an id, or the expanded object); None
    for a deleted customer or one without."""
    if customer.get("deleted"):
        return None
    ref = (customer.get("invoice_settings") or {}).get("default_payment_method")
    return ref or None


def billing_details_from(customer: dict[str, Any], tax_ids: list[dict[str, Any]]) -> BillingDetails:
    """The customer's billing details; of several tax IDs the first (the page keeps one)."""
    address = customer.get("address") or {}
    tax_id = tax_ids[0] if tax_ids else {}
    return BillingDetails(
        name=str(customer.get("name") or ""),
        email=str(customer.get("email") or ""),
        line1=str(address.get("line1") or ""),
        line2=str(address.get("line2") or ""),
        city=str(address.get("city") or ""),
        postal_code=str(address.get("postal_code") or ""),
        state=str(address.get("state") or ""),
        country=str(address.get("country") or ""),
        tax_id_type=str(tax_id.get("type") or ""),
        tax_id_value=str(tax_id.get("value") or ""),
    )
