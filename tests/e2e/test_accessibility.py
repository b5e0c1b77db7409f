"""axe-core on every screen and dialog (no serious or critical violation), and keyboard-only use."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.e2e.test_access import protect

# The card form loads Stripe.js (from localstripe) first: slower than expect()'s 5 s on a busy
# machine.
CARD_FORM_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.e2e

_axe = Axe()


def assert_accessible(page: Page, screen: str) -> None:
    results = _axe.run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    details = "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} → "
        + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in serious
    )
    assert not serious, f"{screen}:\n{details}"


def open_dialog(page: Page, button: str, dialog: str):
    page.get_by_role("button", name=button).click()
    opened = page.get_by_role("dialog", name=dialog)
    expect(opened).to_be_visible()
    page.wait_for_timeout(
        400
    )  # let the opening animation finish: axe reads colours mid-fade otherwise
    return opened


def close_dialog(page: Page, dialog) -> None:
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def test_account_page_tabs_and_dialogs(page: Page, launch, make_account):
    slug = make_account(licenses=3)
    page.goto(launch(slug))
    expect(page.locator("#summary-card")).to_be_visible()
    assert_accessible(page, "Plan tab")
    for button, title in (
        ("Purchase Additional License", "Purchase Form"),
        ("Update Credit Card", "Update Credit Card"),
        ("Convert to Yearly Billing", "Convert to Yearly Billing"),
        ("Cancel Subscription", "Cancel Subscription"),
    ):
        dialog = open_dialog(page, button, title)
        if title == "Update Credit Card":
            dialog.get_by_role("link", name="Change Card").click()
            expect(dialog.locator("#card-element input").first).to_be_visible(
                timeout=CARD_FORM_TIMEOUT_MS
            )
        assert_accessible(page, f"dialog {title}")
        close_dialog(page, dialog)
    page.get_by_role("tab", name="Billing History").click()
    page.wait_for_timeout(500)
    assert_accessible(page, "Billing History tab")
    page.get_by_role("tab", name="User Management").click()
    expect(page.get_by_role("heading", name="Activated Add-on users")).to_be_visible()
    assert_accessible(page, "User Management tab")
    page.get_by_role("tab", name="Activity", exact=True).click()
    expect(page.locator(".activity-row").first).to_be_visible()
    assert_accessible(page, "Activity tab")


def test_free_account_purchase_dialog(page: Page, launch, make_account):
    page.goto(launch(make_account()))
    dialog = open_dialog(page, "Purchase Unlimited Version", "Purchase Unlimited Version")
    expect(dialog.locator("#card-element input").first).to_be_visible(timeout=CARD_FORM_TIMEOUT_MS)
    assert_accessible(page, "Purchase Unlimited Version dialog")


def test_denied_and_password_screens_and_change_password(
    page: Page, base_url: str, launch, make_account
):
    page.goto(base_url + "/")
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page, "launch refused")
    slug = make_account()
    protect(slug)
    page.goto(launch(slug))
    expect(page.get_by_role("button", name="Sign In")).to_be_visible()
    assert_accessible(page, "password prompt")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page, "password prompt with error")
    page.get_by_label("Password").fill("Sesame-open-2026")
    page.get_by_role("button", name="Sign In").click()
    open_dialog(page, "Change Password", "Change Password")
    assert_accessible(page, "Change Password dialog")


def tab_until_focused(page: Page, target, presses: int) -> None:
    """Press Tab until `target` has the focus (at most `presses` times)."""
    for _ in range(presses):
        if target.evaluate("el => el === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(target).to_be_focused()


def test_purchase_form_by_keyboard_only(page: Page, launch, make_account):
    slug = make_account(licenses=2)
    page.goto(launch(slug))
    button = page.get_by_role("button", name="Purchase Additional License")
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Purchase Form")
    expect(dialog).to_be_visible()
    count = dialog.get_by_label("How many extra licenses?")
    tab_until_focused(page, count, 6)  # focus moves into the dialog, then to the number box
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    expect(dialog.locator("#license-preview")).to_contain_text("$40.00 per month")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("checkbox", name="I Agree")).to_be_focused()
    page.keyboard.press("Space")
    expect(dialog.get_by_role("checkbox", name="I Agree")).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Add License")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#licenses-summary")).to_have_text("0 of 5 licenses used")


def test_user_removal_by_keyboard_only(page: Page, launch, seat_account):
    slug, domain, _key = seat_account(licenses=5, users=2)
    page.goto(launch(slug))
    page.get_by_role("tab", name="User Management").focus()
    page.keyboard.press("Enter")
    remove = page.get_by_role("button", name=f"Remove user1@{domain}")
    expect(remove).to_be_visible()
    tab_until_focused(page, remove, 40)
    page.keyboard.press("Enter")
    confirm = page.get_by_role("alertdialog")
    expect(confirm).to_be_visible()
    yes = confirm.get_by_role("button", name="Yes")
    tab_until_focused(page, yes, 4)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name=f"Remove user1@{domain}")).to_have_count(0)
