"""Reduce Licenses and Switch to Monthly at the next renewal, through the real page and the
emulator: scheduled, shown in the summary, undone; the dialog fits the sidebar and the desktop."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from billing_app.db import session_scope
from billing_app.models import ActivatedUser
from billing_app.services.accounts import get_account
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_money_flows import open_account, stripe_subscription

pytestmark = pytest.mark.e2e


def add_users(slug: str, count: int) -> None:
    with session_scope() as session:
        account = get_account(session, slug)
        session.add_all(
            ActivatedUser(account_id=account.id, email=f"user{i}@{slug}.test") for i in range(count)
        )


def open_reduce(page: Page):
    page.get_by_role("button", name="Reduce Licenses").click()
    dialog = page.get_by_role("dialog", name="Reduce Licenses")
    expect(dialog).to_be_visible()
    return dialog


def refused_at_ten(page: Page, launch, make_account) -> tuple[Locator, Locator, Locator, Locator]:
    """Reduce Licenses of an account with 10 licenses and 4 users, refused for keeping 10: the
    dialog, its number field, its confirming button and the refusal."""
    slug = make_account(licenses=10)
    add_users(slug, 4)
    open_account(page, launch, slug)
    dialog = open_reduce(page)
    licenses = dialog.get_by_label("Licenses from the next renewal")
    submit = dialog.get_by_role("button", name="Reduce at Renewal")
    licenses.fill("10")
    submit.click()
    refusal = dialog.locator("#reduce-licenses-error")
    expect(refusal).to_have_attribute("role", "alert")
    expect(refusal).to_contain_text("fewer licenses than the 10")
    return dialog, licenses, submit, refusal


def test_a_click_right_after_editing_the_number_is_not_lost(page: Page, launch, make_account):
    """A person's click lasts about 100 ms. The field sends its new number when it loses focus, as
    the button is pressed; the page must not move the button away before it is released."""
    dialog, licenses, submit, _refusal = refused_at_ten(page, launch, make_account)
    licenses.fill("6")
    box = submit.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(150)  # the press itself: the new number reaches the server meanwhile
    page.mouse.up()
    expect(dialog).to_have_count(0)
    expect(page.locator("#scheduled-licenses")).to_contain_text(" with 6 licenses")
    # The toast saying so covers the top of the page for a few seconds: it can be closed.
    page.get_by_role("button", name="Close toast").click()
    expect(page.locator("[data-sonner-toast]")).to_have_count(0)


def test_a_refusal_is_hidden_once_its_number_is_edited_and_nothing_moves(
    page: Page, launch, make_account
):
    _dialog, licenses, submit, refusal = refused_at_ten(page, launch, make_account)
    where = submit.bounding_box()
    licenses.fill("6")
    licenses.press("Tab")
    expect(refusal).to_be_hidden()  # it was about 10
    assert submit.bounding_box() == where
    licenses.fill("10")
    licenses.press("Tab")
    expect(refusal).to_be_visible()  # about this number again


def test_reduce_licenses_scheduled_then_undone(page: Page, launch, make_account, artifacts):
    slug = make_account(licenses=10)
    add_users(slug, 4)
    open_account(page, launch, slug)
    dialog = open_reduce(page)
    licenses = dialog.get_by_label("Licenses from the next renewal")
    expect(licenses).to_have_value("9")
    expect(dialog).to_contain_text("You have 10 licenses; 4 in use now.")
    submit = dialog.get_by_role("button", name="Reduce at Renewal")

    # Bad input: a clear message, and nothing changes at Stripe or on the page.
    for bad in ("0", "2.5", ""):
        licenses.fill(bad)
        expect(dialog).to_contain_text("Enter a whole number of licenses from 1 to 1000.")
        expect(submit).to_be_disabled()
    licenses.fill("3")
    submit.click()
    expect(dialog.get_by_role("alert")).to_contain_text("Remove 1 user in User Management first")
    licenses.fill("10")
    submit.click()
    expect(dialog.get_by_role("alert")).to_contain_text("fewer licenses than the 10")
    assert stripe_subscription(slug).schedule_id is None
    expect(page.locator("#scheduled-licenses")).to_have_count(0)

    licenses.fill("6")
    submit.click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text("you will have 6 licenses")).to_be_visible()
    scheduled = page.locator("#scheduled-licenses")
    expect(scheduled).to_contain_text("Renews on ")
    expect(scheduled).to_contain_text(" with 6 licenses")
    expect(page.locator("#licenses-summary")).to_have_text("4 of 10 licenses used")
    page.locator("#summary-card").screenshot(path=artifacts / "reduce-licenses-scheduled.png")
    subscription = stripe_subscription(slug)
    assert subscription.quantity == 10
    assert subscription.scheduled is not None and subscription.scheduled.quantity == 6

    page.get_by_role("button", name="Keep current licenses").click()
    expect(scheduled).to_have_count(0)
    expect(page.get_by_text("Your licenses stay as they are at the renewal.")).to_be_visible()
    assert stripe_subscription(slug).schedule_id is None

    page.get_by_role("tab", name="Activity").click()
    expect(page.get_by_text("Licenses from the next renewal: 6")).to_be_visible()
    expect(page.get_by_text("Scheduled license reduction undone")).to_be_visible()


def test_reduce_dialog_links_to_user_management(page: Page, launch, make_account):
    slug = make_account(licenses=2)
    open_account(page, launch, slug)
    dialog = open_reduce(page)
    dialog.get_by_role("link", name="User Management").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("tab", name="User Management")).to_have_attribute(
        "aria-selected", "true"
    )


def test_switch_to_monthly_scheduled_then_undone(page: Page, launch, make_account):
    slug = make_account(licenses=3, yearly=True)
    open_account(page, launch, slug)
    page.get_by_role("button", name="Switch to Monthly at Renewal").click()
    dialog = page.get_by_role("dialog", name="Switch to Monthly")
    expect(dialog).to_be_visible()
    page.wait_for_timeout(400)  # the opening animation: axe reads colours mid-fade otherwise
    assert_accessible(page, "Switch to Monthly dialog")
    dialog.get_by_role("button", name="Switch at Renewal").click()
    expect(dialog).to_have_count(0)
    expect(page.locator("#scheduled-monthly")).to_contain_text("Switches to monthly on ")
    expect(page.get_by_role("button", name="Switch to Monthly at Renewal")).to_have_count(0)
    assert stripe_subscription(slug).interval == "year"
    page.get_by_role("button", name="Keep yearly billing").click()
    expect(page.locator("#scheduled-monthly")).to_have_count(0)
    assert stripe_subscription(slug).schedule_id is None


def test_reduce_dialog_fits_and_is_accessible(browser: Browser, launch, make_account, artifacts):
    slug = make_account(licenses=5)
    for width in (360, 1280):
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        open_account(page, launch, slug)
        dialog = open_reduce(page)
        page.wait_for_timeout(400)  # the opening animation: axe reads colours mid-fade otherwise
        box = dialog.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=artifacts / f"reduce-licenses-{width}.png")
        assert_accessible(page, f"Reduce Licenses dialog at {width} px")
        context.close()


def test_reduce_licenses_in_german_at_360_px(browser: Browser, launch, make_account, artifacts):
    slug = make_account(licenses=10)
    add_users(slug, 4)
    context = browser.new_context(viewport={"width": 360, "height": 800})
    page = context.new_page()
    page.goto(launch(slug, locale="de"))
    page.get_by_role("button", name="Lizenzen reduzieren").click()
    dialog = page.get_by_role("dialog", name="Lizenzen reduzieren")
    licenses = dialog.get_by_label("Lizenzen ab der nächsten Verlängerung")
    expect(licenses).to_have_value("9")
    expect(dialog).to_contain_text("Sie haben 10 Lizenzen, davon 4 jetzt genutzt.")
    expect(dialog).to_contain_text("entfernen Sie zuerst Benutzer im Bereich Benutzer.")
    licenses.fill("3")
    dialog.get_by_role("button", name="Zur Verlängerung reduzieren").click()
    expect(dialog.get_by_role("alert")).to_contain_text(
        "Entfernen Sie zuerst 1 Benutzer in der Benutzerverwaltung"
    )
    page.wait_for_timeout(400)  # the opening animation
    page.screenshot(path=artifacts / "reduce-licenses-de-360.png")
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    # The German buttons are longer: both stay inside the dialog.
    for name in ("Schließen", "Zur Verlängerung reduzieren"):
        button = dialog.get_by_role("button", name=name).bounding_box()
        assert button is not None
        assert box["x"] <= button["x"] and button["x"] + button["width"] <= box["x"] + box["width"]

    licenses.fill("6")
    dialog.get_by_role("button", name="Zur Verlängerung reduzieren").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text(re.compile(r"haben Sie 6 Lizenzen\."))).to_be_visible()
    expect(page.locator("#scheduled-licenses")).to_have_text(
        re.compile(r"Verlängert sich am \d{2}\.\d{2}\.\d{4} mit 6 Lizenzen")
    )
    page.get_by_role("button", name="Aktuelle Lizenzen behalten").click()
    expect(page.locator("#scheduled-licenses")).to_have_count(0)
    context.close()
