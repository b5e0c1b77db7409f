"""The Activity tab's rows: the account's audit log, newest first, in plain words.

Only whitelisted detail fields are ever read (`_SHOWN`): the log also holds Stripe ids, setup
intents and form ids, which the page must not show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from billing_app.i18n import N_, _, ngettext
from billing_app.models import AuditLog
from billing_app.plans import Interval
from billing_app.services.audit import AuditAction, AuditOutcome
from billing_app.services.money import format_money
from billing_app.services.seats import exceeding_licenses
from billing_app.services.summary import card_label

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
    "locked": N_("too many wrong passwords; try again later"),
    "plan_required": N_("the account has the free version"),
    "domain_not_allowed": N_("the email's domain is not allowed"),
    "no_free_license": N_("no free license"),
    "users_exceed_licenses": N_("more users than licenses"),
}


@dataclass(frozen=True)
class ActivityRow:
    """One audit entry as the Activity tab shows it."""

    id: str
    at: str  # ISO 8601 UTC: the browser writes it in the viewer's time zone
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
        return _("Operator")
    if actor.lower().startswith(("stripe", "webhook")):
        return "Stripe"
    if actor.startswith("connector"):
        return _("Connector")
    if "@" in actor:
        return actor
    return _("System")


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


def _licenses(count: Any) -> str:
    number = count if isinstance(count, int) else 0
    return ngettext("%(count)s license", "%(count)s licenses", number) % {"count": count}


def _charged(detail: dict[str, Any]) -> str:
    cents, currency = detail.get("charged_cents"), detail.get("currency")
    if isinstance(cents, int) and cents > 0 and isinstance(currency, str):
        return " — " + _("%(amount)s charged") % {"amount": format_money(cents, currency)}
    return ""


def _amount(detail: dict[str, Any]) -> str:
    cents, currency = detail.get("amount_cents"), detail.get("currency")
    if isinstance(cents, int) and isinstance(currency, str):
        return format_money(cents, currency)
    return ""


def _plan(detail: dict[str, Any]) -> str:
    plan = (
        _("%(licenses)s, billed yearly")
        if detail.get("interval") == Interval.YEAR
        else _("%(licenses)s, billed monthly")
    )
    return plan % {"licenses": _licenses(detail["licenses"])}


def _was(detail: dict[str, Any]) -> str:
    previous = detail.get("previous_licenses")
    return _(" (was %(count)s)") % {"count": previous} if isinstance(previous, int) else ""


def _what(action: AuditAction | None, ok: bool, detail: dict[str, Any]) -> str:
    email = str(detail.get("email", ""))
    match action:
        case None:
            return _("Other change")
        case AuditAction.LICENSE_RELEASE if email:
            return _("Removed %(email)s") % {"email": email}
        case AuditAction.LICENSE_ACTIVATE if email:
            return _("Activated %(email)s") % {"email": email}
        case AuditAction.ADD_LICENSES if "licenses" in detail:
            return _("Added %(licenses)s") % {"licenses": _licenses(detail["licenses"])} + (
                _charged(detail)
            )
        case AuditAction.REDUCE_LICENSES if "licenses" in detail:
            return _("Licenses from the next renewal: %(count)s") % {"count": detail["licenses"]}
        case AuditAction.PURCHASE_UNLIMITED if "licenses" in detail:
            return _("Unlimited Version purchased: %(plan)s") % {"plan": _plan(detail)} + (
                _charged(detail)
            )
        case AuditAction.SUBSCRIPTION_CHANGED if "licenses" in detail:
            return _("Subscription changed at Stripe: %(plan)s") % {"plan": _plan(detail)} + _was(
                detail
            )
        case AuditAction.USERS_EXCEED_LICENSES if isinstance(detail.get("users"), int) and (
            isinstance(detail.get("licenses"), int)
        ):
            return _("%(exceeding)s: new users are refused until resolved") % {
                "exceeding": exceeding_licenses(detail["users"], detail["licenses"])
            }
        case AuditAction.PAYMENT_FAILED | AuditAction.PAYMENT_SUCCEEDED if _amount(detail):
            return _("Payment of %(amount)s") % {"amount": _amount(detail)}
        case AuditAction.PAYMENT_ACTION_REQUIRED if _amount(detail):
            return _("Bank asks to confirm a payment of %(amount)s") % {"amount": _amount(detail)}
        case AuditAction.CONVERT_YEARLY:
            return _(action.label) + _charged(detail)
        case AuditAction.CHANGE_CARD:
            brand, last4 = str(detail.get("card_brand", "")), str(detail.get("card_last4", ""))
            if ok and brand and _LAST4.fullmatch(last4):
                return _("Card changed to %(card)s") % {"card": card_label(brand, last4)}
            return _(action.label)
        case AuditAction.PAGE_SIGN_IN if not ok:
            return _("Sign-in failed")
        case AuditAction.PAGE_CHANGE_PASSWORD if not ok:
            return _("Password change failed")
        case _:
            return _(action.label)


def _outcome(action: AuditAction | None, ok: bool, detail: dict[str, Any]) -> str:
    if ok:
        return _("Done")
    reason = str(detail.get("reason") or detail.get("result") or "")
    known = _FAILURE_REASONS.get(reason)
    why = _(known) if known else str(detail.get("message", ""))[:MAX_MESSAGE_CHARS]
    if not why and action in (AuditAction.PAGE_SIGN_IN, AuditAction.PAGE_CHANGE_PASSWORD):
        why = _("wrong password")
    return _("Failed: %(why)s") % {"why": why} if why else _("Failed")


def describe(action: AuditAction, ok: bool, detail: dict[str, Any]) -> str:
    """What an audit entry about to be written says, in the Activity tab's words."""
    return _what(action, ok, _whitelisted(detail))


def iso_instant(at: datetime) -> str:
    """The entry's time for the browser, which shows it in the viewer's time zone: ISO 8601 UTC
    (SQLite gives the stored UTC back without a zone)."""
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds")


def display_row(entry: AuditLog) -> ActivityRow:
    """One audit entry as the Activity tab shows it: when (UTC, see `iso_instant`), who, what,
    outcome, in the current locale."""
    try:
        action: AuditAction | None = AuditAction(entry.action)
    except ValueError:
        action = None
    ok = entry.outcome == AuditOutcome.OK
    detail = _shown_detail(entry.detail)
    return ActivityRow(
        id=str(entry.id),
        at=iso_instant(entry.at),
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
