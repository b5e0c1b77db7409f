"""The Activity tab's rows: the account's audit log, newest first, in plain words.

Only whitelisted detail fields are ever read (`_SHOWN`): the log also holds Stripe ids, setup
intents and form ids, which the page must not show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from billing_app.models import AuditLog
from billing_app.plans import Interval
from billing_app.services.audit import AuditAction, AuditOutcome
from billing_app.services.money import format_money
from billing_app.services.seats import exceeding_licenses, plural

PAGE_SIZE = 25
MAX_MESSAGE_CHARS = 200
_SHOWN = frozenset(
    {
        "email",
        "licenses",
        "previous_licenses",
        "users",
        "interval",
        "charged_cents",
        "amount_cents",
        "currency",
        "card_brand",
        "card_last4",
        "added",
        "removed",
        "message",
        "reason",
        "result",
    }
)
_LAST4 = re.compile(r"\d{4}")
_FAILURE_REASONS = {
    "locked": "too many wrong passwords; try again later",
    "plan_required": "the account has the free version",
    "domain_not_allowed": "the email's domain is not allowed",
    "no_free_license": "no free license",
    "users_exceed_licenses": "more users than licenses",
}


@dataclass(frozen=True)
class ActivityRow:
    """One audit entry as the Activity tab shows it."""

    id: str
    when: str
    who: str
    what: str
    outcome: str
    status: str  # "done" or "failed"


@dataclass(frozen=True)
class ActivityPage:
    rows: list[ActivityRow]
    has_more: bool
    # The id of the last row shown: the next page starts below it.
    next_cursor: int | None


def actor_label(actor: str) -> str:
    """Who did it: the launch link's email for page actions, else the kind of actor."""
    if actor.startswith("billing-admin"):
        return "Operator"
    if actor.lower().startswith(("stripe", "webhook")):
        return "Stripe"
    if actor.startswith("connector"):
        return "Connector"
    if "@" in actor:
        return actor
    return "System"


def _shown_detail(raw: str) -> dict[str, Any]:
    try:
        detail = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(detail, dict):
        return {}
    return _whitelisted(detail)


def _whitelisted(detail: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in detail.items() if key in _SHOWN}


def _charged(detail: dict[str, Any]) -> str:
    cents, currency = detail.get("charged_cents"), detail.get("currency")
    if isinstance(cents, int) and cents > 0 and isinstance(currency, str):
        return f" — {format_money(cents, currency)} charged"
    return ""


def _amount(detail: dict[str, Any]) -> str:
    cents, currency = detail.get("amount_cents"), detail.get("currency")
    if isinstance(cents, int) and isinstance(currency, str):
        return format_money(cents, currency)
    return ""


def _plan(detail: dict[str, Any]) -> str:
    billed = "yearly" if detail.get("interval") == Interval.YEAR else "monthly"
    return f"{plural(detail['licenses'], 'license')}, billed {billed}"


def _was(detail: dict[str, Any]) -> str:
    previous = detail.get("previous_licenses")
    return f" (was {previous})" if isinstance(previous, int) else ""


def _what(action: AuditAction | None, ok: bool, detail: dict[str, Any]) -> str:
    email = str(detail.get("email", ""))
    match action:
        case None:
            return "Other change"
        case AuditAction.LICENSE_RELEASE if email:
            return f"Removed {email}"
        case AuditAction.LICENSE_ACTIVATE if email:
            return f"Activated {email}"
        case AuditAction.ADD_LICENSES if "licenses" in detail:
            return f"Added {plural(detail['licenses'], 'license')}{_charged(detail)}"
        case AuditAction.REDUCE_LICENSES if "licenses" in detail:
            return f"Licenses from the next renewal: {detail['licenses']}"
        case AuditAction.PURCHASE_UNLIMITED if "licenses" in detail:
            return f"Unlimited Version purchased: {_plan(detail)}{_charged(detail)}"
        case AuditAction.SUBSCRIPTION_CHANGED if "licenses" in detail:
            return f"Subscription changed at Stripe: {_plan(detail)}{_was(detail)}"
        case AuditAction.USERS_EXCEED_LICENSES if isinstance(detail.get("users"), int) and (
            isinstance(detail.get("licenses"), int)
        ):
            users, licenses = detail["users"], detail["licenses"]
            return f"{exceeding_licenses(users, licenses)}: new users are refused until resolved"
        case AuditAction.PAYMENT_FAILED | AuditAction.PAYMENT_SUCCEEDED if _amount(detail):
            return f"Payment of {_amount(detail)}"
        case AuditAction.PAYMENT_ACTION_REQUIRED if _amount(detail):
            return f"Bank asks to confirm a payment of {_amount(detail)}"
        case AuditAction.CONVERT_YEARLY:
            return f"{action.label}{_charged(detail)}"
        case AuditAction.CHANGE_CARD:
            brand, last4 = str(detail.get("card_brand", "")), str(detail.get("card_last4", ""))
            if ok and brand and _LAST4.fullmatch(last4):
                return f"Card changed to {brand.title()} ending {last4}"
            return action.label
        case AuditAction.PAGE_SIGN_IN if not ok:
            return "Sign-in failed"
        case AuditAction.PAGE_CHANGE_PASSWORD if not ok:
            return "Password change failed"
        case _:
            return action.label


def _outcome(action: AuditAction | None, ok: bool, detail: dict[str, Any]) -> str:
    if ok:
        return "Done"
    reason = str(detail.get("reason") or detail.get("result") or "")
    why = _FAILURE_REASONS.get(reason) or str(detail.get("message", ""))[:MAX_MESSAGE_CHARS]
    if not why and action in (AuditAction.PAGE_SIGN_IN, AuditAction.PAGE_CHANGE_PASSWORD):
        why = "wrong password"
    return f"Failed: {why}" if why else "Failed"


def describe(action: AuditAction, ok: bool, detail: dict[str, Any]) -> str:
    """What an audit entry about to be written says, in the Activity tab's words."""
    return _what(action, ok, _whitelisted(detail))


def format_when(at: datetime) -> str:
    return f"{at.day} {at:%b %Y, %H:%M} UTC"


def display_row(entry: AuditLog) -> ActivityRow:
    """One audit entry as the Activity tab shows it: when, who, what, outcome."""
    try:
        action: AuditAction | None = AuditAction(entry.action)
    except ValueError:
        action = None
    ok = entry.outcome == AuditOutcome.OK
    detail = _shown_detail(entry.detail)
    return ActivityRow(
        id=str(entry.id),
        when=format_when(entry.at),
        who=actor_label(entry.actor),
        what=_what(action, ok, detail),
        outcome=_outcome(action, ok, detail),
        status="done" if ok else "failed",
    )


def display_rows(entries: Iterable[AuditLog]) -> list[ActivityRow]:
    return [display_row(entry) for entry in entries]


def activity_page(
    session: Session, account_id: int, *, before: int | None = None, limit: int = PAGE_SIZE
) -> ActivityPage:
    """The account's entries below id `before` (all when None), newest first, `limit` of them."""
    query = select(AuditLog).where(AuditLog.account_id == account_id)
    if before is not None:
        query = query.where(col(AuditLog.id) < before)
    entries = list(session.exec(query.order_by(col(AuditLog.id).desc()).limit(limit + 1)))
    shown, has_more = entries[:limit], len(entries) > limit
    return ActivityPage(display_rows(shown), has_more, shown[-1].id if has_more else None)
