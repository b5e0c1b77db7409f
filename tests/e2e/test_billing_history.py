"""The Billing History tab: "Open" → the invoice PDF in a new tab; Download; who may open a link."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from billing_app.db import session_scope
from billing_app.services.accounts import create_account, get_account
from billing_app.services.gateway import get_gateway
from billing_app.services.invoice_links import invoice_pdf_url
from billing_app.services.invoices import PAGE_SIZE
from billing_app.services.page_sessions import start_page_session
from billing_app.services.seeding import paid_subscription
from tests.e2e.helpers import pdf_text, save_pdf_and_png

pytestmark = pytest.mark.e2e


def open_history(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.get_by_role("tab", name="Billing History").click()


def first_demo_invoice(page: Page):
    row = page.locator(".invoice-row").first
    expect(row).to_contain_text("$80.00")
    expect(row).to_contain_text("Paid")
    return row


def test_the_tab_opens_while_the_launch_link_is_still_in_the_address_bar(page: Page, launch):
    # The script dropping the link from the address bar reaches the browser after the delta showing
    # the page: a tab clicked in between sends its load with the tab's own link.
    url = launch("demo")
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.evaluate("url => window.history.replaceState(null, '', url)", url)
    page.get_by_role("tab", name="Billing History").click()
    first_demo_invoice(page)


def stripe_numbers(slug: str) -> set[str | None]:
    """The numbers Stripe gave the account's invoices (Stripe's number is the one shown)."""
    with session_scope() as session:
        customer_id = get_account(session, slug).stripe_customer_id
    return {
        invoice.number for invoice in get_gateway().invoice_page(customer_id, limit=100).invoices
    }


def test_open_shows_the_invoice_pdf_in_a_new_tab_once(browser: Browser, page: Page, launch):
    open_history(page, launch("demo"))
    row = first_demo_invoice(page)
    number = row.get_attribute("aria-label")
    assert number in stripe_numbers("demo")
    context = page.context
    with (
        context.expect_page() as new_tab,
        context.expect_event(
            "response", lambda response: "/api/invoices/" in response.url
        ) as pdf_response,
    ):
        row.get_by_role("button", name="Open", exact=True).click()
    response = pdf_response.value
    assert new_tab.value.url == response.url != page.url
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'inline; filename="invoice-{number}.pdf"'

    # The link was minted for this tab and spent by it: a copy works neither here nor in another
    # browser.
    assert page.request.get(response.url).status == 403
    elsewhere = browser.new_context()
    assert elsewhere.request.get(response.url).status == 403
    elsewhere.close()
    # Each click mints a new link.
    # (The first tab may ask for its spent link again meanwhile: that answer is not this click's.)
    first = response.url
    with context.expect_event(
        "response", lambda r: "/api/invoices/" in r.url and r.url != first
    ) as again:
        row.get_by_role("button", name="Open", exact=True).click()
    assert again.value.status == 200


def test_download_saves_the_pdf_as_a_file(page: Page, launch, artifacts):
    open_history(page, launch("demo"))
    row = first_demo_invoice(page)
    number = row.get_attribute("aria-label")
    assert number in stripe_numbers("demo")
    with page.expect_download() as download:
        row.get_by_role("button", name="Download", exact=True).click()
    assert download.value.suggested_filename == f"invoice-{number}.pdf"
    with open(download.value.path(), "rb") as saved:
        content = saved.read()
    text = pdf_text(content)
    for expected in (
        "INVOICE",
        "Acme Corp",
        "admin@acme.test",
        "Unlimited Version",
        "Total $80.00",
        "Amount paid $80.00",
        "Amount due $0.00",
        "PAID",
        "Page 1 of 1",
    ):
        assert expected in text
    assert number in text
    save_pdf_and_png(content, artifacts / "invoice-demo.pdf")


def test_keyboard_users_reach_the_history_too(page: Page, launch):
    page.goto(launch("demo"))
    page.get_by_role("tab", name="Plan").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Billing History")).to_have_attribute(
        "aria-selected", "true"
    )
    first_demo_invoice(page)


def test_new_account_sees_the_empty_state(page: Page, launch, artifacts):
    open_history(page, launch("free-demo"))
    expect(page.get_by_text("No invoices yet")).to_be_visible()
    expect(page.locator(".invoice-row")).to_have_count(0)
    expect(page.get_by_role("button", name="Load more")).to_have_count(0)
    page.screenshot(path=artifacts / "history-empty-400.png")


def test_load_more_pages_through_many_invoices(page: Page, launch, artifacts):
    gateway = get_gateway()
    slug = f"many-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        create_account(
            session, slug=slug, name="Many Invoices Ltd", admin_email="boss@many.test", actor="e2e"
        )
    key = uuid.uuid4().hex
    customer_id = gateway.create_customer(
        name="Many Invoices Ltd",
        email="boss@many.test",
        account_ref=slug,
        idempotency_key=f"{key}:customer",
    )
    gateway.attach_default_card(customer_id, "pm_card_visa", idempotency_key=f"{key}:card")
    price_id = gateway.ensure_catalogue().monthly_price_id
    for n in range(PAGE_SIZE + 2):  # one paid invoice per subscription
        paid_subscription(gateway, customer_id, price_id, 1, key=f"{key}:sub{n}")
    with session_scope() as session:
        get_account(session, slug).stripe_customer_id = customer_id

    open_history(page, launch(slug))
    expect(page.locator(".invoice-row")).to_have_count(PAGE_SIZE)
    page.get_by_role("button", name="Load more").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "history-load-more-400.png")
    page.get_by_role("button", name="Load more").click()
    expect(page.locator(".invoice-row")).to_have_count(PAGE_SIZE + 2)
    expect(page.get_by_role("button", name="Load more")).to_have_count(0)
    numbers = page.locator(".invoice-row").evaluate_all(
        "rows => rows.map(r => r.getAttribute('aria-label'))"
    )
    assert len(set(numbers)) == PAGE_SIZE + 2 and set(numbers) == stripe_numbers(slug)


# Access: a link opens exactly one invoice of one account, once, for the tab that minted it.


def demo_link(page: Page, launch) -> str:
    """A link the demo tab minted for its first invoice, caught before the new tab could spend
    it."""
    open_history(page, launch("demo"))
    # Answered by the test for as long as the browser lives: an aborted navigation would be retried
    # by Chromium (its error page, or the new tab navigating again), spending the link.
    page.context.route("**/api/invoices/**", lambda route: route.fulfill(status=204))
    with page.context.expect_event(
        "request", lambda request: "/api/invoices/in_" in request.url
    ) as request:
        first_demo_invoice(page).get_by_role("button", name="Open", exact=True).click()
    return request.value.url


def assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert "application/pdf" not in response.headers["content-type"]
    for secret in ("Acme", "acme.test", "in_", "80.00"):
        assert secret not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_tampered_expired_used_and_other_account_links_are_refused(
    page: Page, launch, app_settings
):
    href = demo_link(page, launch)
    invoice_id = urlsplit(href).path.split("/")[3]
    query = dict(parse_qsl(urlsplit(href).query))
    with session_scope() as session:
        demo, other = get_account(session, "demo"), get_account(session, "free-demo")
        demo_id, other_id, epochs = (
            demo.id,
            other.id,
            {demo.id: demo.session_epoch, other.id: other.session_epoch},
        )
        other_session = start_page_session(session, other_id, lifetime=timedelta(hours=12))

    def link(account_id: int, page_session_id: str, **options) -> str:
        return invoice_pdf_url(
            app_settings,
            account_id=account_id,
            invoice_id=invoice_id,
            page_session_id=page_session_id,
            session_epoch=epochs[account_id],
            **options,
        )

    tampered_signature = href[:-1] + ("0" if href[-1] != "0" else "1")
    assert_refused(httpx.get(tampered_signature, timeout=30), 403)
    assert_refused(
        httpx.get(href.replace(f"account={demo_id}", f"account={other_id}"), timeout=30), 403
    )
    assert_refused(httpx.get(href.replace("expires=", "expires=9"), timeout=30), 403)
    assert_refused(
        httpx.get(link(demo_id, query["session"], now=time.time() - 3600), timeout=30), 403
    )
    assert_refused(httpx.get(href.split("?")[0], timeout=30), 403)
    # The demo tab's session cannot be borrowed by another account's link...
    assert_refused(httpx.get(link(other_id, query["session"]), timeout=30), 403)
    # ...and another account's own signed-in session cannot name this account's invoice.
    assert_refused(httpx.get(link(other_id, other_session), timeout=30), 404)
    assert httpx.get(href, timeout=30).status_code == 200
    assert_refused(httpx.get(href, timeout=30), 403)  # used


def test_screenshots_of_the_history_sidebar_and_desktop(browser: Browser, launch, artifacts):
    for width, height in ((360, 780), (1280, 900)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        open_history(page, launch("demo"))
        first_demo_invoice(page)
        page.screenshot(path=artifacts / f"history-{width}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        context.close()
