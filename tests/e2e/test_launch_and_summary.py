"""Opening the Billing Page from a launch link, in a real browser against the production build."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from billing_app.services.launch_tokens import sign_launch_token

pytestmark = pytest.mark.e2e

DENIED = "Open the Billing Page from the $ icon in the connector"


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_launch_link_shows_the_demo_summary(page: Page, launch):
    open_page(page, launch("demo"))
    expect(page.get_by_role("heading", name="Acme Corp")).to_be_visible()
    card = page.locator("#summary-card")
    expect(card).to_contain_text("Unlimited Version")
    expect(card).to_contain_text("Monthly")
    expect(page.locator("#licenses-summary")).to_have_text("3 of 10 licenses used")
    expect(card).to_contain_text("$80.00 on ")
    expect(card).to_contain_text("Visa ending 4242")
    expect(page.get_by_text("Test mode")).to_be_visible()
    # The token is dropped from the address bar once redeemed.
    assert "launch=" not in page.url


def test_reload_keeps_the_tab_signed_in(page: Page, launch):
    open_page(page, launch("demo"))
    expect(page.get_by_role("heading", name="Acme Corp")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Acme Corp")).to_be_visible()
    expect(page.locator("#licenses-summary")).to_have_text("3 of 10 licenses used")


def test_free_account_shows_the_free_version(page: Page, launch):
    open_page(page, launch("free-demo"))
    expect(page.get_by_role("heading", name="Globex")).to_be_visible()
    card = page.locator("#summary-card")
    expect(card).to_contain_text("Free Version")
    expect(card).to_contain_text("No card on file")
    expect(page.locator("#licenses-summary")).to_have_text("0 of 0 licenses used")


def _assert_denied(page: Page) -> None:
    expect(page.get_by_role("alert")).to_contain_text(DENIED)
    html = page.content()
    for secret in ("Acme", "acme.test", "4242", "alice@", "Globex"):
        assert secret not in html


@pytest.mark.parametrize(
    "query", ["", "?launch=", "?launch=not-a-token", "?launch=eyJhIjoiZGVtbyJ9.c2lnbmF0dXJl"]
)
def test_missing_or_forged_link_shows_no_data(page: Page, base_url: str, query: str):
    page.goto(base_url + "/" + query)
    _assert_denied(page)


def test_tampered_link_shows_no_data(page: Page, launch):
    url = launch("free-demo")
    head, signature = url.rsplit(".", 1)
    page.goto(f"{head}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}")
    _assert_denied(page)


def test_expired_link_shows_no_data(page: Page, base_url: str, app_settings):
    token = sign_launch_token(
        app_settings.launch_secret,
        account="demo",
        email="admin@acme.test",
        ttl_seconds=600,
        now=time.time() - 601,
    )
    page.goto(f"{base_url}/?launch={token}")
    _assert_denied(page)


def test_a_link_opens_one_tab_only(browser, launch):
    url = launch("demo")
    first = browser.new_context().new_page()
    open_page(first, url)
    expect(first.get_by_role("heading", name="Acme Corp")).to_be_visible()
    second = browser.new_context().new_page()
    second.goto(url)
    _assert_denied(second)
    first.context.close()
    second.context.close()


def test_tabs_show_invoices_and_users(page: Page, launch):
    open_page(page, launch("demo"))
    page.get_by_role("tab", name="Billing History").click()
    first_invoice = page.locator(".invoice-row").first
    expect(first_invoice).to_contain_text("$80.00")
    expect(first_invoice).to_contain_text("Paid")
    page.get_by_role("tab", name="User Management").click()
    expect(page.get_by_role("heading", name="Activated Add-on users")).to_be_visible()
    expect(page.locator(".user-row")).to_have_count(3)
    for email in ("alice@acme.test", "bob@acme.test", "carol@acme.test"):
        expect(page.get_by_text(email)).to_be_visible()
    expect(page.get_by_role("heading", name="Email Domain allowed to use licenses")).to_be_visible()
    expect(page.get_by_text("acme.test", exact=True)).to_be_visible()


def test_screenshots_sidebar_and_desktop(browser, launch, artifacts):
    for width, height in ((360, 780), (1280, 900)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        open_page(page, launch("demo"))
        expect(page.locator("#licenses-summary")).to_be_visible()
        page.screenshot(path=artifacts / f"summary-{width}.png", full_page=True)
        # Nothing overflows sideways in the sidebar.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        context.close()
