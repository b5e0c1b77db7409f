"""Stripe webhook events: verified, applied once each, in any order.

Events are only a hint that something changed: the account is re-read from
Stripe (`BillingService.resync`), so a late or out-of-order event cannot roll
the page back to an older state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import select

from billing_app.db import session_scope
from billing_app.models import Account, StripeEvent
from billing_app.services.billing_actions import BillingService
from billing_app.stripe_gateway import GatewayError

log = logging.getLogger(__name__)

HANDLED_EVENTS = frozenset({
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "invoice.created", "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed",
    "customer.updated",
})
OUTCOME_APPLIED, OUTCOME_IGNORED, OUTCOME_ERROR, OUTCOME_PROCESSING = "applied", "ignored", "error", "processing"


@dataclass(frozen=True)
class WebhookResult:
    status: int
    outcome: str


def _claim_event(event_id: str, event_type: str) -> bool:
    """Store the event id; False when it was already applied (a replay)."""
    with session_scope() as session:
        existing = session.get(StripeEvent, event_id)
        if existing is not None:
            if existing.outcome != OUTCOME_ERROR:
                return False
            existing.outcome = OUTCOME_PROCESSING  # an earlier attempt failed: try again
            session.add(existing)
            return True
        try:
            with session.begin_nested():
                session.add(StripeEvent(id=event_id, type=event_type, outcome=OUTCOME_PROCESSING))
        except sa.exc.IntegrityError:
            return False  # a concurrent delivery of the same event won
    return True


def _record(event_id: str, outcome: str, account_id: int | None, detail: str = "") -> None:
    with session_scope() as session:
        event = session.get(StripeEvent, event_id)
        event.outcome, event.account_id, event.detail = outcome, account_id, detail[:500]
        session.add(event)


def handle_delivery(service: BillingService, payload: bytes, signature: str) -> WebhookResult:
    try:
        event = service.gateway.construct_event(payload, signature)
    except ValueError:
        return WebhookResult(400, "invalid signature")
    event_id, event_type = str(event.get("id", "")), str(event.get("type", ""))
    if not event_id:
        return WebhookResult(400, "no event id")
    if not _claim_event(event_id, event_type):
        return WebhookResult(200, "replay")
    obj = (event.get("data") or {}).get("object") or {}
    customer_id = obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
    if isinstance(customer_id, dict):
        customer_id = customer_id.get("id")
    with session_scope() as session:
        account = session.exec(select(Account).where(Account.stripe_customer_id == customer_id)).first() if customer_id else None
    if event_type not in HANDLED_EVENTS or account is None:
        _record(event_id, OUTCOME_IGNORED, account.id if account else None)
        return WebhookResult(200, OUTCOME_IGNORED)
    subscription_id = obj.get("id") if obj.get("object") == "subscription" else None
    try:
        service.resync(account.id, subscription_id=subscription_id)
    except GatewayError as exc:
        # Stripe retries deliveries that fail; the stored "error" lets the retry run again.
        _record(event_id, OUTCOME_ERROR, account.id, exc.code or "gateway error")
        return WebhookResult(503, OUTCOME_ERROR)
    _record(event_id, OUTCOME_APPLIED, account.id)
    log.info("webhook %s %s applied to account %s", event_type, event_id, account.id)
    return WebhookResult(200, OUTCOME_APPLIED)
