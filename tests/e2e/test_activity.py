"""The "Activity" tab in a real browser: the account's audit log, newest first."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_a_removed_user_is_the_first_activity(page: Page, launch, seat_account):
    slug, domain, _key = seat_account(licenses=10, users=3)
    page.goto(launch(slug))
    page.get_by_role("tab", name="User Management").click()
    page.get_by_role("button", name=f"Remove user2@{domain}", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Yes").click()
    expect(page.get_by_text(f"user2@{domain} was removed")).to_be_visible()

    page.get_by_role("tab", name="Activity", exact=True).click()
    first = page.locator(".activity-row").first
    expect(first).to_contain_text(f"Removed user2@{domain}")
    expect(first).to_contain_text(f"admin@{domain}")
    expect(first).to_contain_text("Done")
    expect(first).to_contain_text("UTC")


def test_the_four_tabs_fit_the_sidebar(browser, launch, seat_account, artifacts):
    slug, _domain, _key = seat_account(licenses=4, users=2)
    context = browser.new_context(viewport={"width": 320, "height": 700})
    page = context.new_page()
    page.goto(launch(slug))
    page.get_by_role("tab", name="Activity", exact=True).click()
    expect(page.locator(".activity-row").first).to_be_visible()
    tab_list = page.get_by_role("tablist")
    tab_list.screenshot(path=artifacts / "tabs-320.png")
    page.screenshot(path=artifacts / "activity-320.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    box = tab_list.bounding_box()
    assert box is not None
    for name in ("Plan", "Billing History", "User Management", "Activity"):
        tab = page.get_by_role("tab", name=name, exact=True).bounding_box()
        assert tab is not None, name
        # Inside the list, not scrolled out of it.
        assert box["x"] - 0.5 <= tab["x"] <= box["x"] + box["width"] - tab["width"] + 0.5, name
    context.close()
