"""The Billing History service and the PDF route, with a fake Stripe gateway."""

from __future__ import annotations

import io
import time
import uuid
import warnings
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from pypdf import PdfReader
from sqlmodel import Session, select
from starlette.exceptions import StarletteDeprecationWarning

from billing_app.api import invoice_pdf
from billing_app.api.routes import build_api
from billing_app.db import get_engine, session_scope
from billing_app.models import Account, AuditLog, InvoiceNumber, PageSession, utcnow
from billing_app.runner import migrate
from billing_app.services import accounts
from billing_app.services.invoice_links import invoice_pdf_url
from billing_app.services.invoices import (
    PAGE_SIZE,
    InvoiceNotAvailable,
    assign_numbers,
    history_page,
    render_account_invoice,
)
from billing_app.services.page_sessions import start_page_session
from billing_app.settings import get_settings
from billing_app.stripe.errors import MSG_NOT_FOUND, MSG_UNREACHABLE, GatewayError
from billing_app.stripe.snapshots import InvoiceLine, InvoicePage, InvoiceSummary

with warnings.catch_warnings():
    # Starlette now prefers the `httpx2` package; the pinned httpx still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

T0 = datetime(2026, 1, 1, 12, 0)


def invoice(
    invoice_id: str,
    days: int,
    *,
    status: str = "paid",
    number: str | None = None,
    amount: int = 8000,
    customer_name: str = "Acme GmbH",
) -> InvoiceSummary:
    created = T0 + timedelta(days=days)
    lines = (
        InvoiceLine(
            "Unlimited Version",
            10,
            amount // 10,
            amount,
            created,
            created + timedelta(days=30),
            False,
        ),
    )
    return InvoiceSummary(
        id=invoice_id,
        number=number,
        created=created,
        period_start=created,
        period_end=created + timedelta(days=30),
        status=status,
        currency="usd",
        subtotal=amount,
        tax=0,
        total=amount,
        amount_paid=amount if status == "paid" else 0,
        amount_due=amount,
        lines=lines,
        customer_name=customer_name,
        customer_email="admin@acme.test",
    )


class FakeGateway:
    """Stripe's invoice list and retrieve, for a few customers, newest first."""

    def __init__(self, invoices: dict[str, list[InvoiceSummary]]) -> None:
        self.invoices = {
            customer: sorted(found, key=lambda i: i.created, reverse=True)
            for customer, found in invoices.items()
        }
        self.error: GatewayError | None = None

    def invoice_page(
        self, customer_id: str, *, limit: int, starting_after: str | None = None
    ) -> InvoicePage:
        if self.error:
            raise self.error
        found = self.invoices.get(customer_id, [])
        start = next((i + 1 for i, inv in enumerate(found) if inv.id == starting_after), 0)
        page = found[start : start + limit]
        return InvoicePage(page, start + limit < len(found), page[-1].id if page else None)

    def retrieve_invoice(
        self, invoice_id: str, *, customer_id: str | None = None
    ) -> InvoiceSummary:
        if self.error:
            raise self.error
        for customer, found in self.invoices.items():
            for inv in found:
                if inv.id == invoice_id and customer in (customer_id, None):
                    return inv
        raise GatewayError(MSG_NOT_FOUND, code="resource_missing")


def make_account(engine, slug: str, customer_id: str | None) -> int:
    with Session(engine) as session:
        account = accounts.create_account(
            session,
            slug=slug,
            name=f"{slug.title()} GmbH",
            admin_email=f"admin@{slug}.test",
            actor="test",
        )
        account.stripe_customer_id = customer_id
        session.commit()
        return account.id


# The list ------------------------------------------------------------------------


def test_an_account_without_stripe_customer_has_no_invoices(engine, settings):
    account_id = make_account(engine, "fresh", None)
    page = history_page(FakeGateway({}), account_id, actor="test", engine=engine)
    assert (page.rows, page.has_more, page.next_cursor) == ([], False, None)


def test_rows_are_newest_first_with_our_numbers_oldest_first(engine, settings):
    account_id = make_account(engine, "acme", "cus_acme")
    gateway = FakeGateway(
        {
            "cus_acme": [
                invoice("in_old", 0),
                invoice("in_mid", 31, number="STRIPE-7", status="open", amount=2400),
                invoice("in_new", 62, status="void"),
                invoice("in_draft", 70, status="draft"),
            ]
        }
    )

    page = history_page(gateway, account_id, actor="test", engine=engine)

    assert [(r.id, r.number, r.status, r.amount) for r in page.rows] == [
        ("in_new", "ACME-0002", "Void", "$80.00"),
        ("in_mid", "STRIPE-7", "Open", "$24.00"),  # Stripe's own number wins
        ("in_old", "ACME-0001", "Paid", "$80.00"),
    ]
    assert (
        page.rows[2].date == "Jan 1, 2026" and page.rows[2].period == "Jan 1, 2026 – Jan 31, 2026"
    )
    # Numbers are stable: listing again assigns nothing new.
    again = history_page(gateway, account_id, actor="test", engine=engine)
    assert [r.number for r in again.rows] == ["ACME-0002", "STRIPE-7", "ACME-0001"]
    with Session(engine) as session:
        audits = session.exec(select(AuditLog).where(AuditLog.action == "invoice.number")).all()
    assert len(audits) == 1 and audits[0].actor == "test"
    assert (
        '"in_old": "ACME-0001"' in audits[0].detail and '"in_new": "ACME-0002"' in audits[0].detail
    )


def test_pages_of_25_with_a_cursor(engine, settings):
    account_id = make_account(engine, "big", "cus_big")
    gateway = FakeGateway({"cus_big": [invoice(f"in_{n:03d}", n) for n in range(30)]})

    first = history_page(gateway, account_id, actor="test", engine=engine)
    assert len(first.rows) == PAGE_SIZE and first.has_more and first.next_cursor == "in_005"
    rest = history_page(
        gateway, account_id, actor="test", starting_after=first.next_cursor, engine=engine
    )
    assert [r.id for r in rest.rows] == ["in_004", "in_003", "in_002", "in_001", "in_000"]
    assert not rest.has_more
    # Numbered page by page as first seen, oldest first within a page; each stays unique.
    numbers = [r.number for r in first.rows + rest.rows]
    assert len(set(numbers)) == 30
    assert (numbers[0], numbers[24], numbers[25], numbers[29]) == (
        "BIG-0025",
        "BIG-0001",
        "BIG-0030",
        "BIG-0026",
    )


def test_each_account_numbers_its_own_invoices(engine):
    first, second = make_account(engine, "one", "cus_1"), make_account(engine, "two", "cus_2")
    with Session(engine) as session:
        a, b = session.get(Account, first), session.get(Account, second)
        assert assign_numbers(session, a, [invoice("in_a1", 1)], actor="t") == {"in_a1": "ONE-0001"}
        assert assign_numbers(
            session, b, [invoice("in_b1", 1), invoice("in_b0", 0)], actor="t"
        ) == {"in_b0": "TWO-0001", "in_b1": "TWO-0002"}
        assert assign_numbers(
            session, a, [invoice("in_a2", 2), invoice("in_a1", 1)], actor="t"
        ) == {"in_a1": "ONE-0001", "in_a2": "ONE-0002"}
        session.commit()
        assert len(session.exec(select(InvoiceNumber)).all()) == 4


def test_a_worker_numbering_the_same_invoices_at_the_same_moment_wins(engine, monkeypatch):
    account_id = make_account(engine, "race", "cus_race")
    with Session(engine) as session:
        account = session.get(Account, account_id)
        begin_nested = session.begin_nested

        def after_the_other_worker():
            # The other worker commits between our read of known numbers and our insert.
            monkeypatch.setattr(session, "begin_nested", begin_nested)
            with Session(engine) as other:
                assign_numbers(
                    other, other.get(Account, account_id), [invoice("in_r1", 1)], actor="other"
                )
                other.commit()
            return begin_nested()

        monkeypatch.setattr(session, "begin_nested", after_the_other_worker)
        numbers = assign_numbers(
            session, account, [invoice("in_r1", 1), invoice("in_r2", 2)], actor="us"
        )
        session.commit()
        assert numbers == {"in_r1": "RACE-0001", "in_r2": "RACE-0002"}
        rows = session.exec(
            select(InvoiceNumber).where(InvoiceNumber.account_id == account_id)
        ).all()
        assert sorted((row.stripe_invoice_id, row.sequence) for row in rows) == [
            ("in_r1", 1),
            ("in_r2", 2),
        ]


def test_stripe_errors_reach_the_caller(engine, settings):
    account_id = make_account(engine, "down", "cus_down")
    gateway = FakeGateway({})
    gateway.error = GatewayError(MSG_UNREACHABLE, code="unreachable", retryable=True)
    with pytest.raises(GatewayError):
        history_page(gateway, account_id, actor="test", engine=engine)


# The PDF ---------------------------------------------------------------------------


def test_an_own_invoice_renders_with_its_number(engine, settings):
    account_id = make_account(engine, "acme", "cus_acme")
    gateway = FakeGateway({"cus_acme": [invoice("in_1", 0), invoice("in_2", 31, amount=12345)]})
    rendered = render_account_invoice(
        gateway, settings, account_id, "in_2", actor="test", engine=engine
    )
    assert rendered.filename == "invoice-ACME-0001.pdf"
    text = PdfReader(io.BytesIO(rendered.content)).pages[0].extract_text()
    assert (
        "ACME-0001" in text
        and "Total $123.45" in text
        and "Acme GmbH" in text
        and "admin@acme.test" in text
    )


def test_the_buyer_is_who_stripe_froze_on_the_invoice_not_the_account_today(engine, settings):
    account_id = make_account(engine, "acme", "cus_acme")  # the account is "Acme GmbH" today
    issued = replace(
        invoice("in_1", 0, customer_name="Acme Ltd"),
        customer_address=("1 Old Road", "10115 Berlin", "DE"),
        customer_tax_ids=("DE123456789",),
    )
    gateway = FakeGateway({"cus_acme": [issued]})
    rendered = render_account_invoice(
        gateway, settings, account_id, "in_1", actor="test", engine=engine
    )
    text = " ".join(PdfReader(io.BytesIO(rendered.content)).pages[0].extract_text().split())
    assert "Acme Ltd admin@acme.test 1 Old Road 10115 Berlin DE Tax ID: DE123456789" in text
    assert "Acme GmbH" not in text


def test_only_final_invoices_pdfs_are_kept_on_disk(engine, settings):
    account_id = make_account(engine, "acme", "cus_acme")
    gateway = FakeGateway(
        {
            "cus_acme": [
                invoice("in_paid", 0),
                invoice("in_void", 1, status="void"),
                invoice("in_open", 2, status="open"),
            ]
        }
    )
    rendered = {
        invoice_id: render_account_invoice(
            gateway, settings, account_id, invoice_id, actor="test", engine=engine
        ).content
        for invoice_id in ("in_paid", "in_void", "in_open")
    }
    on_disk = {path.read_bytes() for path in (settings.billing_data_dir / "pdf-cache").iterdir()}
    assert on_disk == {rendered["in_paid"], rendered["in_void"]}


@pytest.mark.parametrize("invoice_id", ["in_theirs", "in_draft", "in_missing"])
def test_other_customers_drafts_and_unknown_invoices_are_not_available(
    engine, settings, invoice_id
):
    account_id = make_account(engine, "acme", "cus_acme")
    gateway = FakeGateway(
        {
            "cus_acme": [invoice("in_draft", 1, status="draft")],
            "cus_other": [invoice("in_theirs", 0)],
        }
    )
    with pytest.raises(InvoiceNotAvailable):
        render_account_invoice(
            gateway, settings, account_id, invoice_id, actor="test", engine=engine
        )


def test_an_unknown_account_has_no_invoices(engine, settings):
    with pytest.raises(InvoiceNotAvailable):
        render_account_invoice(FakeGateway({}), settings, 999, "in_1", actor="test", engine=engine)


# The HTTP route (its own app; the E2E tests cover it inside the real one) ----------------


@pytest.fixture
def api(monkeypatch):
    """The route against the test run's database, with a fake gateway."""
    migrate(get_settings().database_url)
    gateway = FakeGateway(
        {"cus_route_a": [invoice("in_route_a", 0)], "cus_route_b": [invoice("in_route_b", 0)]}
    )
    monkeypatch.setattr(invoice_pdf, "get_gateway", lambda: gateway)
    engine = get_engine()
    ids = {}
    for slug in ("route-a", "route-b"):
        with Session(engine) as session:
            found = session.exec(select(Account).where(Account.slug == slug)).first()
        ids[slug] = (
            found.id if found else make_account(engine, slug, f"cus_{slug.replace('-', '_')}")
        )
    with TestClient(build_api(invoice_pdf.routes)) as client:
        yield client, gateway, ids


SIGN_IN_LIFETIME = timedelta(hours=12)


def test_the_page_sessions_of_tabs_closed_while_signed_in_go_once_no_sign_in_could_hold():
    migrate(get_settings().database_url)
    account_id = make_account(get_engine(), f"closed-{uuid.uuid4().hex[:8]}", "cus_closed_tabs")
    with session_scope() as session:
        aged = start_page_session(session, account_id, lifetime=SIGN_IN_LIFETIME)
        recent = start_page_session(session, account_id, lifetime=SIGN_IN_LIFETIME)
        session.get_one(PageSession, aged).created_at = (
            utcnow() - SIGN_IN_LIFETIME - timedelta(minutes=1)
        )
    with session_scope() as session:
        new = start_page_session(session, account_id, lifetime=SIGN_IN_LIFETIME)
    with session_scope() as session:
        assert session.get(PageSession, aged) is None
        assert {recent, new} <= {row.id for row in session.exec(select(PageSession)).all()}


def tab_link(account_id: int, invoice_id: str, **options) -> str:
    """A PDF link as a signed-in tab of the account mints it."""
    with session_scope() as session:
        epoch = session.get(Account, account_id).session_epoch
        page_session_id = start_page_session(session, account_id, lifetime=SIGN_IN_LIFETIME)
    return invoice_pdf_url(
        get_settings(),
        account_id=account_id,
        invoice_id=invoice_id,
        page_session_id=page_session_id,
        session_epoch=epoch,
        **options,
    )


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def assert_refused(response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == invoice_pdf.REFUSED
    assert "no-store" in response.headers["cache-control"]


def test_route_serves_the_pdf_inline_or_as_attachment(api):
    client, _, ids = api
    response = client.get(path_of(tab_link(ids["route-a"], "in_route_a")))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'inline; filename="invoice-ROUTE-A-0001.pdf"'
    assert response.headers["cache-control"] == "private, no-store"
    assert response.content.startswith(b"%PDF-")
    download = client.get(path_of(tab_link(ids["route-a"], "in_route_a", download=True)))
    assert (
        download.headers["content-disposition"] == 'attachment; filename="invoice-ROUTE-A-0001.pdf"'
    )


def test_route_refuses_tampered_expired_and_other_account_links(api):
    client, _, ids = api
    good = path_of(tab_link(ids["route-a"], "in_route_a"))
    assert_refused(
        client.get(good.replace(f"account={ids['route-a']}", f"account={ids['route-b']}")), 403
    )
    assert_refused(client.get(good.replace("in_route_a", "in_route_b")), 403)
    assert_refused(client.get(good[:-1] + ("0" if good[-1] != "0" else "1")), 403)
    assert_refused(client.get(good.split("?")[0]), 403)
    expired = path_of(tab_link(ids["route-a"], "in_route_a", now=time.time() - 61))
    assert_refused(client.get(expired), 403)
    # Validly signed for account B, but the invoice is A's: B cannot have it.
    assert_refused(client.get(path_of(tab_link(ids["route-b"], "in_route_a"))), 404)


def test_route_reports_stripe_trouble_without_details(api):
    client, gateway, ids = api
    gateway.error = GatewayError(MSG_UNREACHABLE, code="unreachable", retryable=True)
    response = client.get(path_of(tab_link(ids["route-a"], "in_route_a")))
    assert response.status_code == 503 and response.text == MSG_UNREACHABLE


def test_buyer_fields_of_invoices_are_optional():
    assert replace(invoice("in_x", 0), customer_tax_ids=("DE123",)).customer_address == ()
