"""The Billing Details dialog on the Plan tab: saved at Stripe and shown, refused input changes
nothing, and the dialog fits the sidebar and the desktop (axe clean)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from billing_app.db import session_scope
from billing_app.services.accounts import get_account
from billing_app.settings import TEST_MODE_SECRET_KEY, Settings
from tests.e2e.test_accessibility import assert_accessible

pytestmark = pytest.mark.e2e


def open_details(page: Page, launch, slug: str):
    page.goto(launch(slug))
    expect(page.locator("#summary-card")).to_be_visible()
    page.get_by_role("button", name="Billing Details").click()
    dialog = page.get_by_role("dialog", name="Billing Details")
    expect(dialog).to_be_visible()
    return dialog


def fill_berlin(dialog) -> None:
    dialog.get_by_label("Company name").fill("Acme GmbH")
    dialog.get_by_label("Address", exact=True).fill("Friedrichstraße 1")
    dialog.get_by_label("Postal code").fill("10117")
    dialog.get_by_label("City").fill("Berlin")
    dialog.get_by_label("Country").select_option("DE")
    dialog.get_by_label("Invoice email").fill("billing@acme.test")
    expect(dialog.get_by_label("Tax ID type")).to_contain_text("EU VAT")
    dialog.get_by_label("Tax ID type").select_option("eu_vat")
    dialog.get_by_label("Tax ID", exact=True).fill("de 123 456 789")


def stripe_customer(settings: Settings, slug: str) -> tuple[dict, list[tuple[str, str]]]:
    with session_scope() as session:
        customer_id = get_account(session, slug).stripe_customer_id
    assert customer_id
    headers = {"Authorization": f"Bearer {TEST_MODE_SECRET_KEY}"}
    base = f"{settings.stripe_api_base}/v1/customers/{customer_id}"
    customer = httpx.get(base, headers=headers, timeout=10).json()
    tax_ids = httpx.get(f"{base}/tax_ids", headers=headers, timeout=10).json()["data"]
    return customer, [(t["type"], t["value"]) for t in tax_ids]


def test_billing_details_are_saved_at_stripe_and_shown(
    page: Page, launch, make_account, app_settings, artifacts
):
    slug = make_account()  # the free version: the Stripe customer is made for the details
    dialog = open_details(page, launch, slug)
    expect(dialog.get_by_label("Company name")).to_have_value(f"Shop {slug[-4:]}")
    expect(dialog.get_by_label("Invoice email")).to_have_value(f"boss@{slug}.test")
    fill_berlin(dialog)
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Billing details saved. New invoices will show them.")).to_be_visible()
    expect(dialog).to_have_count(0)
    expect(page.locator("#billing-details-summary")).to_have_text(
        "Acme GmbH · Berlin, Germany · DE123456789"
    )
    page.screenshot(path=artifacts / "billing-details-summary-400.png", full_page=True)
    customer, tax_ids = stripe_customer(app_settings, slug)
    assert (customer["name"], customer["email"]) == ("Acme GmbH", "billing@acme.test")
    assert (customer["address"]["city"], customer["address"]["country"]) == ("Berlin", "DE")
    assert tax_ids == [("eu_vat", "DE123456789")]

    # Opened again, the form shows what was saved.
    page.get_by_role("button", name="Billing Details").click()
    dialog = page.get_by_role("dialog", name="Billing Details")
    expect(dialog.get_by_label("Company name")).to_have_value("Acme GmbH")
    expect(dialog.get_by_label("Country")).to_have_value("DE")
    expect(dialog.get_by_label("Tax ID", exact=True)).to_have_value("DE123456789")


def test_bad_input_gets_a_clear_message_and_changes_nothing(page: Page, launch, make_account):
    slug = make_account()
    dialog = open_details(page, launch, slug)
    fill_berlin(dialog)
    dialog.get_by_label("Tax ID", exact=True).fill("DE12")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "Enter a valid EU VAT number, such as DE123456789."
    )
    # Another country offers its own types; the typed number is checked against them.
    dialog.get_by_label("Country").select_option("US")
    expect(dialog.get_by_label("Tax ID type")).to_have_value("us_ein")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "Enter a valid US EIN number, such as 12-3456789."
    )
    dialog.get_by_label("Country").select_option("")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_have_text("Choose a country.")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(page.locator("#billing-details-summary")).to_have_text("Not set")
    with session_scope() as session:
        account = get_account(session, slug)
        assert account.stripe_customer_id is None and account.billing_country is None


def test_the_dialog_fits_the_sidebar_and_the_desktop(browser, launch, make_account, artifacts):
    slug = make_account(licenses=1)
    for width, height in ((360, 780), (1280, 900)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(15_000)
        dialog = open_details(page, launch, slug)
        fill_berlin(dialog)
        page.wait_for_timeout(400)  # the dialog's fade-in: axe reads colours mid-fade otherwise
        page.screenshot(path=artifacts / f"billing-details-{width}.png")
        box = dialog.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        # The last control can be scrolled to inside the dialog.
        save = dialog.get_by_role("button", name="Save")
        save.scroll_into_view_if_needed()
        expect(save).to_be_in_viewport()
        page.screenshot(path=artifacts / f"billing-details-{width}-end.png")
        assert_accessible(page, f"Billing Details dialog at {width} px")
        context.close()
