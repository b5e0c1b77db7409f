"""The Billing History: an account's invoices from Stripe, their numbers, PDF links and PDFs.

Nothing is copied from Stripe but the numbers we give invoices that have none
(localstripe never numbers them): every list and every PDF is read from
Stripe again, so they always agree with what Stripe charged. Amounts stay
integer minor units until they are written for people.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from billing_app.db import session_scope
from billing_app.i18n import N_, _, format_date, get_locale
from billing_app.models import Account, InvoiceNumber
from billing_app.pdf import cache as pdf_cache
from billing_app.pdf.invoice import DocumentLine, InvoiceDocument, Party, TotalRow
from billing_app.services import audit
from billing_app.services.money import format_money
from billing_app.services.summary import (
    InvoiceRow,
    format_period,
    invoice_row,
    invoice_status_label,
)
from billing_app.settings import Settings
from billing_app.stripe.client import StripeClient
from billing_app.stripe.errors import GatewayError
from billing_app.stripe.snapshots import InvoiceSummary

PAGE_SIZE = 25
# Drafts are not final (Stripe does not show them to customers either).
HIDDEN_STATUSES = frozenset({"draft"})
STAMPS = {"paid": N_("PAID"), "void": N_("VOID")}
# Invoices Stripe never changes again: their PDFs are also kept on disk (billing_app.pdf.cache).
FINAL_STATUSES = frozenset({"paid", "void"})
_NUMBERING_ATTEMPTS = 3
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class InvoiceNotAvailable(Exception):
    """No such final invoice of this account (whatever the reason: it is not shown)."""


@dataclass(frozen=True)
class HistoryPage:
    rows: list[InvoiceRow]
    has_more: bool
    next_cursor: str | None


@dataclass(frozen=True)
class RenderedInvoice:
    filename: str
    content: bytes


# Numbers ---------------------------------------------------------------------


def assign_numbers(
    session: Session, account: Account, invoices: Sequence[InvoiceSummary], *, actor: str
) -> dict[str, str]:
    """Each invoice's number: Stripe's, else ours (`DEMO-0001`), assigned once, oldest first.

    Real Stripe numbers every finalized invoice, so ours are for localstripe
    (test mode): given as invoices are first listed, a page at a time.
    """
    assert account.id is not None  # read from the database
    numbers = {invoice.id: invoice.number for invoice in invoices if invoice.number}
    unnumbered = sorted((i for i in invoices if not i.number), key=lambda i: i.created)
    for _attempt in range(_NUMBERING_ATTEMPTS):
        ids = [invoice.id for invoice in unnumbered]
        known = (
            dict(
                session.exec(
                    select(InvoiceNumber.stripe_invoice_id, InvoiceNumber.number).where(
                        col(InvoiceNumber.stripe_invoice_id).in_(ids)
                    )
                ).all()
            )
            if ids
            else {}
        )
        new = [invoice for invoice in unnumbered if invoice.id not in known]
        if not new:
            return numbers | known
        last = (
            session.exec(
                select(sa.func.max(InvoiceNumber.sequence)).where(
                    InvoiceNumber.account_id == account.id
                )
            ).one()
            or 0
        )
        rows = [
            InvoiceNumber(
                stripe_invoice_id=invoice.id,
                account_id=account.id,
                sequence=sequence,
                number=f"{account.slug.upper()}-{sequence:04d}",
            )
            for sequence, invoice in enumerate(new, start=last + 1)
        ]
        try:
            # Only writes in this transaction: on SQLite a transaction that read first and then
            # writes after another connection committed fails at once ("database is locked").
            session.add_all(rows)
            session.flush()
        except IntegrityError:
            session.rollback()
            continue  # another worker numbered some of them at the same moment: read theirs
        added = {row.stripe_invoice_id: row.number for row in rows}
        audit.record(
            session,
            action=audit.AuditAction.INVOICE_NUMBER,
            actor=actor,
            account_id=account.id,
            numbers=added,
        )
        return numbers | known | added
    raise RuntimeError(f"could not number the invoices of account {account.id}")


# The history list ------------------------------------------------------------


def _load_account(account_id: int, engine: Engine | None) -> Account | None:
    with session_scope(engine) as session:
        return session.get(Account, account_id)


def history_page(
    gateway: StripeClient,
    account_id: int,
    *,
    actor: str,
    starting_after: str | None = None,
    engine: Engine | None = None,
) -> HistoryPage:
    """One page of the account's invoices as display rows, newest first (PDF links are minted on
    click)."""
    account = _load_account(account_id, engine)
    if account is None or not account.stripe_customer_id:
        return HistoryPage([], False, None)
    page = gateway.invoice_page(
        account.stripe_customer_id, limit=PAGE_SIZE, starting_after=starting_after
    )
    invoices = [invoice for invoice in page.invoices if invoice.status not in HIDDEN_STATUSES]
    with session_scope(engine) as session:
        numbers = assign_numbers(session, account, invoices, actor=actor)
    return HistoryPage(
        [invoice_row(invoice, numbers[invoice.id]) for invoice in invoices],
        page.has_more,
        page.next_cursor,
    )


# The PDF -----------------------------------------------------------------------


def _tax_id_line(tax_id: str) -> str:
    return _("Tax ID: %(tax_id)s") % {"tax_id": tax_id}


def seller_party(settings: Settings) -> Party:
    tax_id = settings.billing_seller_tax_id
    return Party(
        settings.billing_seller_name,
        (*settings.seller_address_lines, *([_tax_id_line(tax_id)] if tax_id else [])),
    )


def buyer_party(invoice: InvoiceSummary) -> Party:
    """The buyer as Stripe froze it when the invoice was finalized, never as the account is
    today: an invoice issued stays the same document."""
    tax_ids = [_tax_id_line(tax_id) for tax_id in invoice.customer_tax_ids]
    email = (invoice.customer_email,) if invoice.customer_email else ()
    return Party(
        invoice.customer_name or invoice.customer_email,
        (*email, *invoice.customer_address, *tax_ids),
    )


def invoice_document(
    invoice: InvoiceSummary, number: str, seller: Party, buyer: Party
) -> InvoiceDocument:
    """What the PDF says, written for people (in the current locale), from Stripe's invoice."""

    def money(amount: int) -> str:
        return format_money(amount, invoice.currency)

    lines = tuple(
        DocumentLine(
            description=line.description or _("Item"),
            detail=" · ".join(
                part
                for part in (
                    format_period(line.period_start, line.period_end),
                    _("Prorated") if line.proration else "",
                )
                if part
            ),
            quantity=str(line.quantity),
            unit_price=money(line.unit_amount),
            amount=money(line.amount),
        )
        for line in invoice.lines
    )
    totals = (
        TotalRow(_("Subtotal"), money(invoice.subtotal)),
        TotalRow(_("Tax"), money(invoice.tax)),
        TotalRow(_("Total"), money(invoice.total), strong=True),
        TotalRow(_("Amount paid"), money(invoice.amount_paid)),
        TotalRow(_("Amount due"), money(invoice.amount_remaining), strong=True),
    )
    return InvoiceDocument(
        number=number,
        issue_date=format_date(invoice.created),
        period=format_period(invoice.period_start, invoice.period_end),
        status=invoice_status_label(invoice.status),
        stamp=STAMPS.get(invoice.status),
        seller=seller,
        buyer=buyer,
        lines=lines,
        totals=totals,
        note=_("All amounts in %(currency)s.") % {"currency": invoice.currency.upper()},
        locale=get_locale(),
    )


def pdf_filename(number: str) -> str:
    return f"invoice-{_FILENAME_UNSAFE.sub('-', number).strip('-') or 'document'}.pdf"


def render_account_invoice(
    gateway: StripeClient,
    settings: Settings,
    account_id: int,
    invoice_id: str,
    *,
    actor: str,
    engine: Engine | None = None,
) -> RenderedInvoice:
    """The PDF of one of the account's own final invoices, from Stripe's current data."""
    account = _load_account(account_id, engine)
    if account is None or not account.stripe_customer_id:
        raise InvoiceNotAvailable
    try:
        invoice = gateway.retrieve_invoice(invoice_id, customer_id=account.stripe_customer_id)
    except GatewayError as exc:
        if exc.code == "resource_missing":
            raise InvoiceNotAvailable from exc
        raise
    if invoice.status in HIDDEN_STATUSES:
        raise InvoiceNotAvailable
    with session_scope(engine) as session:
        number = assign_numbers(session, account, [invoice], actor=actor)[invoice.id]
    document = invoice_document(invoice, number, seller_party(settings), buyer_party(invoice))
    content = pdf_cache.invoice_pdf(
        document,
        paper=settings.billing_invoice_paper,
        directory=settings.billing_data_dir / "pdf-cache",
        keep_on_disk=invoice.status in FINAL_STATUSES,
    )
    return RenderedInvoice(pdf_filename(number), content)
