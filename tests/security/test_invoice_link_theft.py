"""Attack: use an invoice PDF link without being the signed-in tab that asked for it.

Links used to be signed when the history loaded and stay valid 15–60 minutes for anyone
holding them, through sign-out and password changes. Now a link is minted on click for
one signed-in tab, names that tab's server-side page session and the account's session
epoch, serves its PDF once, and lives at most 60 s (services/invoice_links.py).
The browser side (a copied link in another browser context) is tests/e2e/test_billing_history.py.
"""

from __future__ import annotations

import dataclasses
import warnings
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError
from reflex.istate.data import ReflexURL, RouterData

from billing_app.api import invoice_pdf
from billing_app.api.routes import build_api
from billing_app.db import session_scope
from billing_app.models import Account
from billing_app.services.invoice_links import invoice_pdf_url
from billing_app.services.invoices import RenderedInvoice, history_page
from billing_app.services.page_sessions import start_page_session
from billing_app.services.passwords import set_password
from billing_app.settings import Settings, get_settings
from billing_app.states.page import PageState
from billing_app.stripe.snapshots import InvoicePage, InvoiceSummary

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

INVOICE = "in_theft1"


@pytest.fixture
def pdf_route(monkeypatch):
    """The PDF route; rendering stubbed (which invoice an account has is
    tests/unit/test_invoice_history.py)."""
    monkeypatch.setattr(
        invoice_pdf,
        "render_account_invoice",
        lambda _gateway, _settings, _account_id, invoice_id, actor: RenderedInvoice(
            f"{invoice_id}.pdf", b"%PDF-1.4 stub"
        ),
    )
    monkeypatch.setattr(invoice_pdf, "get_gateway", lambda: None)
    with TestClient(build_api(invoice_pdf.routes)) as client:
        yield client


def _fetch(client: TestClient, url: str | None) -> int:
    assert url is not None
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}").status_code


def _signed_in_tab(account_id: int) -> PageState:
    tab = PageState(_reflex_internal_init=True)
    tab.router = RouterData(url=ReflexURL("http://localhost/"))
    with session_scope() as session:
        account = session.get(Account, account_id)
        tab._launched_account_id, tab._actor = account.id, account.admin_email
        tab._sign_in_as(account)
    return tab


@pytest.fixture
def account_id(seat_account) -> int:
    account_id, _domain, _key = seat_account()
    with session_scope() as session:
        set_password(
            session,
            session.get(Account, account_id),
            "the page password 1",
            actor="t",
            action="account.set_password",
        )
    return account_id


def test_a_link_serves_its_pdf_once(pdf_route, account_id):
    url = _signed_in_tab(account_id)._invoice_pdf_url(INVOICE)
    assert _fetch(pdf_route, url) == 200
    assert _fetch(pdf_route, url) == 403  # a copy, replayed from anywhere


def test_a_refusal_is_in_the_language_of_the_link(pdf_route, account_id):
    tab = _signed_in_tab(account_id)
    tab.locale = "de"
    url = tab._invoice_pdf_url(INVOICE)
    assert url is not None and "locale=de" in url
    assert _fetch(pdf_route, url) == 200
    parts = urlsplit(url)
    again = pdf_route.get(f"{parts.path}?{parts.query}")
    assert again.status_code == 403
    assert again.text.startswith("Dieser Rechnungslink ist nicht gültig")


def test_a_link_dies_with_its_tabs_sign_out(pdf_route, account_id):
    tab = _signed_in_tab(account_id)
    url, download = tab._invoice_pdf_url(INVOICE), tab._invoice_pdf_url(INVOICE, download=True)
    tab._sign_out()  # what the Sign Out event does before emptying the other states
    assert tab.phase == "password"
    assert (_fetch(pdf_route, url), _fetch(pdf_route, download)) == (403, 403)
    assert tab._invoice_pdf_url(INVOICE) is None  # nor can it mint new ones


def test_a_link_dies_when_the_binding_ends_otherwise(pdf_route, account_id):
    idle = _signed_in_tab(account_id)
    url = idle._invoice_pdf_url(INVOICE)
    idle._last_activity -= 31 * 60
    assert idle._check_sign_in() is None  # the idle check, made by the tab's next event
    assert _fetch(pdf_route, url) == 403


def test_a_link_dies_with_a_password_change(pdf_route, account_id):
    changer, other = _signed_in_tab(account_id), _signed_in_tab(account_id)
    before = [changer._invoice_pdf_url(INVOICE), other._invoice_pdf_url(INVOICE)]
    with session_scope() as session:
        account = session.get(Account, account_id)
        set_password(
            session, account, "a new page password", actor="t", action="page.change_password"
        )
        epoch = account.session_epoch
    changer._note_password_changed(epoch)  # as ChangePasswordState does for the tab that changed it
    assert [_fetch(pdf_route, url) for url in before] == [403, 403]
    # The other tab's next event (require_account) signs it out: it mints no new links.
    assert other._check_sign_in() is None and other._invoice_pdf_url(INVOICE) is None
    assert (
        _fetch(pdf_route, changer._invoice_pdf_url(INVOICE)) == 200
    )  # the changer's new links work


def test_another_accounts_tab_cannot_lend_its_session(pdf_route, account_id, seat_account):
    other_account, _domain, _key = seat_account()
    with session_scope() as session:
        foreign_session = start_page_session(session, other_account, lifetime=timedelta(hours=12))
    forged = invoice_pdf_url(
        get_settings(),
        account_id=account_id,
        invoice_id=INVOICE,
        page_session_id=foreign_session,
        session_epoch=1,
    )
    assert _fetch(pdf_route, forged) == 403


def test_the_history_list_carries_no_links(account_id):
    # The rows are what reaches the browser when the tab opens: ids and display text only.
    with session_scope() as session:
        session.get(Account, account_id).stripe_customer_id = "cus_theft"
    summary = InvoiceSummary(
        id=INVOICE,
        number="T-1",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        period_start=None,
        period_end=None,
        status="paid",
        currency="usd",
        subtotal=800,
        tax=0,
        total=800,
        amount_paid=800,
        amount_due=0,
        lines=(),
    )

    class Gateway:
        def invoice_page(self, *_args, **_kwargs):
            return InvoicePage((summary,), False, None)

    rows = history_page(Gateway(), account_id, actor="t").rows
    assert rows and all(
        set(dataclasses.asdict(row))
        == {"id", "date", "number", "period", "amount", "status", "state"}
        for row in rows
    )


def test_links_live_at_most_60_seconds(tmp_path):
    assert Settings(_env_file=None, billing_data_dir=tmp_path).billing_pdf_link_ttl_seconds == 60
    for refused in (9, 61, 900):
        with pytest.raises(ValidationError, match="billing_pdf_link_ttl_seconds"):
            Settings(
                _env_file=None, billing_data_dir=tmp_path, billing_pdf_link_ttl_seconds=refused
            )
