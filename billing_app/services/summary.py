"""What the Billing Page shows about an account, as plain display values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from billing_app.i18n import N_, _, format_date, ngettext
from billing_app.models import Account
from billing_app.plans import Interval, Plan
from billing_app.services.accounts import licenses_used
from billing_app.services.billing_details import brief, stored_details
from billing_app.services.money import format_money
from billing_app.services.seats import UserRow, over_licensed_notice
from billing_app.stripe.snapshots import InvoiceSummary

INVOICE_STATUS_LABELS = {
    "paid": N_("Paid"),
    "open": N_("Open"),
    "void": N_("Void"),
    "draft": N_("Draft"),
    "uncollectible": N_("Uncollectible"),
}


def invoice_status_label(status: str) -> str:
    label = INVOICE_STATUS_LABELS.get(status)
    return _(label) if label else status.title()


@dataclass(frozen=True)
class PageSummary:
    account_name: str
    plan_label: str
    is_unlimited: bool
    interval_label: str
    licenses_used: int
    licenses_purchased: int
    next_invoice_date: str
    next_invoice_amount: str
    cancels_on: str
    card_label: str
    card_expiry: str
    is_monthly: bool
    unpaid_amount: str
    # The unpaid invoice's payment waits for the bank's confirmation (3-D Secure).
    unpaid_needs_authentication: bool
    has_password: bool
    # The saved Billing Details in one line ("" before the first save).
    billing_details: str
    # More users than licenses (e.g. Stripe's quantity was lowered): the Plan tab's banner.
    over_licensed_notice: str
    # Changes scheduled for the renewal, each with its undo ("" when none).
    renews_with: str
    switches_to_monthly: str


def build_summary(session: Session, account: Account) -> PageSummary:
    assert account.id is not None  # read from the database
    unlimited = account.plan == Plan.UNLIMITED
    used = licenses_used(session, account.id)
    has_card = bool(account.card_last4)
    return PageSummary(
        account_name=account.name,
        plan_label=_("Unlimited Version") if unlimited else _("Free Version"),
        is_unlimited=unlimited,
        interval_label=(_("Yearly") if account.billing_interval == Interval.YEAR else _("Monthly"))
        if unlimited
        else "",
        licenses_used=used,
        licenses_purchased=account.licenses_purchased,
        next_invoice_date=format_date(account.current_period_end)
        if account.next_invoice_amount_cents
        else "",
        next_invoice_amount=(
            format_money(account.next_invoice_amount_cents, account.currency)
            if account.next_invoice_amount_cents is not None
            else ""
        ),
        cancels_on=format_date(account.cancel_at),
        card_label=card_label(account.card_brand, account.card_last4) if has_card else "",
        card_expiry=f"{account.card_exp_month:02d}/{account.card_exp_year}"
        if has_card and account.card_exp_month
        else "",
        is_monthly=unlimited and account.billing_interval != Interval.YEAR,
        unpaid_amount=(
            format_money(account.unpaid_amount_cents, account.currency)
            if account.unpaid_invoice_id and account.unpaid_amount_cents is not None
            else ""
        ),
        unpaid_needs_authentication=bool(
            account.unpaid_invoice_id and account.unpaid_requires_action
        ),
        has_password=account.password_hash is not None,
        billing_details=brief(stored_details(account)),
        over_licensed_notice=over_licensed_notice(account.plan, used, account.licenses_purchased),
        renews_with=(
            ngettext(
                "Renews on %(date)s with %(count)s license",
                "Renews on %(date)s with %(count)s licenses",
                account.scheduled_licenses,
            )
            % {"date": format_date(account.scheduled_at), "count": account.scheduled_licenses}
            if unlimited
            and account.scheduled_licenses is not None
            and account.scheduled_licenses != account.licenses_purchased
            else ""
        ),
        switches_to_monthly=(
            _("Switches to monthly on %(date)s") % {"date": format_date(account.scheduled_at)}
            if unlimited
            and account.scheduled_interval is not None
            and account.scheduled_interval != account.billing_interval
            else ""
        ),
    )


def card_label(brand: str | None, last4: str | None) -> str:
    """ "Visa ending 4242"."""
    return _("%(brand)s ending %(last4)s") % {
        "brand": (brand or _("card")).title(),
        "last4": last4,
    }


def format_period(start: datetime | None, end: datetime | None) -> str:
    return f"{format_date(start)} – {format_date(end)}" if start and end else ""


@dataclass(frozen=True)
class InvoiceRow:
    """One invoice of the Billing History."""

    id: str
    date: str
    number: str
    period: str
    amount: str
    # The label in the viewer's language; `state` is Stripe's status, which colours it.
    status: str
    state: str


def invoice_row(invoice: InvoiceSummary, fallback_number: str) -> InvoiceRow:
    return InvoiceRow(
        id=invoice.id,
        date=format_date(invoice.created),
        number=invoice.number or fallback_number,
        period=format_period(invoice.period_start, invoice.period_end),
        amount=format_money(invoice.total, invoice.currency),
        status=invoice_status_label(invoice.status),
        state=invoice.status,
    )


@dataclass(frozen=True)
class UserListRow:
    """One activated user of the User Management list."""

    email: str
    activated: str


def user_list_rows(users: Iterable[UserRow]) -> list[UserListRow]:
    return [UserListRow(user.email, format_date(user.activated_at)) for user in users]
