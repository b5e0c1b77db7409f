"""Stripe webhook events: verified, applied once each, in any order.

Events are only a hint that something changed: the account is re-read from
Stripe (`BillingService.resync`), so a late or out-of-order event cannot roll
the page back to an older state. An event is stored by id with its outcome; one
left "processing" (a crash) or "error" is processed again on Stripe's next
delivery, and any failure answers 500 so that Stripe does deliver it again.

Stripe sends events in bursts (a new subscription alone sends about six), and
a re-read that starts after an event arrived has seen what the event
announced: the re-reads of one account are coalesced (`CoalescedRuns`), at
most one running and one waiting, however many events arrive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from billing_app.db import session_scope
from billing_app.models import Account, StripeEvent
from billing_app.services.billing_actions import BillingService
from billing_app.stripe.errors import GatewayError

log = logging.getLogger(__name__)

# The audit log's actor for what a webhook changed (the Activity tab shows "Stripe").
ACTOR = "stripe (webhook)"

# Stripe API: Types of events. Each may change what the page shows of the account.
HANDLED_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "subscription_schedule.updated",
        "subscription_schedule.released",
        "subscription_schedule.canceled",
        "subscription_schedule.completed",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "customer.updated",
        "customer.tax_id.created",
        "customer.tax_id.updated",
        "customer.tax_id.deleted",
        "payment_method.automatically_updated",
    }
)


class WebhookOutcome(StrEnum):
    """What became of an event, as stored (StripeEvent.outcome)."""

    APPLIED = "applied"
    IGNORED = "ignored"
    ERROR = "error"
    PROCESSING = "processing"


_DONE = (WebhookOutcome.APPLIED, WebhookOutcome.IGNORED)


@dataclass(frozen=True)
class WebhookResult:
    status: int
    outcome: str


T = TypeVar("T")


@dataclass
class _Runs:
    """The runs of one key: how many started and finished (they run one at a time), the last
    one's outcome, and how many callers are still in `run`."""

    started: int = 0
    finished: int = 0
    running: bool = False
    outcome: tuple[Any, BaseException | None] = (None, None)
    callers: int = 0


class CoalescedRuns:
    """Runs `work` for a key at most once at a time, and lets every caller that arrived while a
    run was going take the outcome of the next one (which starts after they all arrived) instead
    of running its own: for work whose result only depends on when it starts."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._keys: dict[Hashable, _Runs] = {}

    def run(self, key: Hashable, work: Callable[[], T]) -> T:
        with self._changed:
            runs = self._keys.setdefault(key, _Runs())
            runs.callers += 1
            needed = runs.started + 1  # the first run that starts from now on
            try:
                while runs.finished < needed:
                    if not runs.running:
                        return self._run_next(runs, work)
                    self._changed.wait()
                value, error = runs.outcome
            finally:
                runs.callers -= 1
                if runs.callers == 0:
                    del self._keys[key]
        if error is not None:
            raise error
        return value

    def _run_next(self, runs: _Runs, work: Callable[[], T]) -> T:
        """Run `work` with the lock released (the caller holds it), keep its outcome for the callers
        waiting for it and wake them."""
        runs.running = True
        runs.started += 1
        number = runs.started
        outcome: tuple[Any, BaseException | None] = (None, None)
        self._changed.release()
        try:
            value = work()
            outcome = (value, None)
            return value
        except BaseException as exc:
            outcome = (None, exc)
            raise
        finally:
            self._changed.acquire()
            runs.running = False
            runs.finished, runs.outcome = number, outcome
            self._changed.notify_all()


_resyncs = CoalescedRuns()


def _claim_event(event_id: str, event_type: str) -> bool:
    """Store the event id; False when it was already applied or ignored (a replay)."""
    with session_scope() as session:
        existing = session.get(StripeEvent, event_id)
        if existing is not None:
            if existing.outcome in _DONE:
                return False
            # An earlier delivery failed, or a crash left it processing: process it again
            # (re-reading Stripe twice is harmless).
            existing.outcome = WebhookOutcome.PROCESSING
            session.add(existing)
            return True
        try:
            with session.begin_nested():
                session.add(
                    StripeEvent(
                        id=event_id, type=event_type[:100], outcome=WebhookOutcome.PROCESSING
                    )
                )
        except IntegrityError:
            return False  # a concurrent delivery of the same event won
    return True


def _record(
    event_id: str, outcome: WebhookOutcome, account_id: int | None, detail: str = ""
) -> None:
    with session_scope() as session:
        event = session.get(StripeEvent, event_id)
        if event is None:
            return
        event.outcome, event.account_id, event.detail = outcome, account_id, detail[:500]
        session.add(event)


def _customer_of(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return obj.get("id")
    customer = obj.get("customer")
    return customer.get("id") if isinstance(customer, dict) else customer


def _apply(
    service: BillingService, event: dict[str, Any], event_id: str, event_type: str
) -> WebhookResult:
    obj = (event.get("data") or {}).get("object") or {}
    if not isinstance(obj, dict):
        obj = {}
    customer_id = _customer_of(obj)
    with session_scope() as session:
        account = (
            session.exec(select(Account).where(Account.stripe_customer_id == customer_id)).first()
            if isinstance(customer_id, str)
            else None
        )
        account_id = account.id if account is not None else None
    if event_type not in HANDLED_EVENTS or account_id is None:
        _record(event_id, WebhookOutcome.IGNORED, account_id)
        return WebhookResult(200, WebhookOutcome.IGNORED)
    subscription_id = obj.get("id") if obj.get("object") == "subscription" else None
    try:
        _resyncs.run(
            (account_id, subscription_id),
            lambda: service.resync(account_id, subscription_id=subscription_id, actor=ACTOR),
        )
    except GatewayError as exc:
        _record(event_id, WebhookOutcome.ERROR, account_id, exc.code)
        return WebhookResult(503, WebhookOutcome.ERROR)
    _record(event_id, WebhookOutcome.APPLIED, account_id)
    log.info("webhook %s %s applied to account %s", event_type, event_id, account_id)
    return WebhookResult(200, WebhookOutcome.APPLIED)


def handle_delivery(service: BillingService, payload: bytes, signature: str) -> WebhookResult:
    try:
        event = service.gateway.construct_event(payload, signature)
    except ValueError:
        return WebhookResult(400, "invalid signature")
    event_id, event_type = str(event.get("id", ""))[:255], str(event.get("type", ""))
    if not event_id:
        return WebhookResult(400, "no event id")
    if not _claim_event(event_id, event_type):
        return WebhookResult(200, "replay")
    try:
        return _apply(service, event, event_id, event_type)
    except Exception as exc:  # recorded, and Stripe delivers it again
        log.exception("webhook %s %s failed", event_type, event_id)
        _record(event_id, WebhookOutcome.ERROR, None, type(exc).__name__)
        return WebhookResult(500, WebhookOutcome.ERROR)
