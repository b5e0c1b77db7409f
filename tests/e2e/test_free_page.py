"""The free page sells the upgrade: what the free version has and the Unlimited Version adds, the
prices from the settings, and the "How to Purchase the Unlimited Version" steps."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from billing_app.components.free_plan import HELP_TITLE, PURCHASE_STEPS
from billing_app.services.money import format_money
from tests.e2e.test_accessibility import assert_accessible

pytestmark = pytest.mark.e2e


def _open_free_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#free-plan-card")).to_be_visible()


def test_free_page_compares_the_versions_with_the_prices(page: Page, launch, app_settings):
    _open_free_page(page, launch("free-demo"))
    card = page.locator("#free-plan-card")
    expect(card.get_by_role("heading", name="Free version", exact=True)).to_be_visible()
    expect(card.get_by_role("heading", name="Unlimited Version", exact=True)).to_be_visible()
    expect(card).to_contain_text("One license for each user of your allowed email domains.")
    prices = page.locator("#unlimited-prices")
    monthly = format_money(app_settings.billing_price_monthly_cents, app_settings.billing_currency)
    yearly = format_money(app_settings.billing_price_yearly_cents, app_settings.billing_currency)
    expect(prices).to_contain_text(f"Per license per month{monthly}")
    expect(prices).to_contain_text(f"Per license per year{yearly}")
    assert (monthly, yearly) == ("$8.00", "$80.00")  # the defaults the tests run with


def test_paid_page_does_not_sell_the_upgrade(page: Page, launch):
    page.goto(launch("demo"))
    expect(page.locator("#summary-card")).to_contain_text("Unlimited Version")
    expect(page.locator("#free-plan-card")).to_have_count(0)
    expect(page.get_by_role("button", name=HELP_TITLE)).to_have_count(0)


def test_how_to_purchase_opens_by_keyboard_with_the_steps(page: Page, launch):
    _open_free_page(page, launch("free-demo"))
    page.get_by_role("button", name=HELP_TITLE).focus()
    page.keyboard.press("Enter")
    help_dialog = page.get_by_role("dialog", name=HELP_TITLE)
    expect(help_dialog).to_be_visible()
    steps = help_dialog.locator("ol > li")
    expect(steps).to_have_text(list(PURCHASE_STEPS))
    page.wait_for_timeout(400)  # the opening animation: axe reads colours mid-fade otherwise
    assert_accessible(page, "How to Purchase the Unlimited Version")
    page.keyboard.press("Escape")
    expect(help_dialog).to_have_count(0)
    # The steps name the real controls: the first one opens the purchase dialog.
    page.get_by_role("button", name="Purchase Unlimited Version").click()
    purchase = page.get_by_role("dialog", name="Purchase Unlimited Version")
    expect(purchase.get_by_label("Number of licenses")).to_be_visible()
    expect(purchase.get_by_role("radiogroup", name="Billing")).to_be_visible()
    expect(purchase.get_by_role("checkbox", name="I Agree")).to_be_visible()
    expect(purchase.get_by_role("button", name="Subscribe")).to_be_visible()


def test_screenshots_of_the_free_page(browser: Browser, launch, artifacts):
    for width in (320, 360, 1280):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        _open_free_page(page, launch("free-demo"))
        page.screenshot(path=artifacts / f"free-page-{width}.png", full_page=True)
        # Nothing overflows sideways in the sidebar.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.get_by_role("button", name=HELP_TITLE).click()
        expect(page.get_by_role("dialog", name=HELP_TITLE)).to_be_visible()
        page.wait_for_timeout(400)
        page.screenshot(path=artifacts / f"free-page-help-{width}.png")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        context.close()
