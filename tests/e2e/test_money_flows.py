"""The money flows through the real page, Stripe.js (localstripe's) and localstripe."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from billing_app.db import session_scope
from billing_app.services.accounts import get_account
from billing_app.services.gateway import get_gateway
from tests.e2e.helpers import fill_card

pytestmark = pytest.mark.e2e


def stripe_subscription(slug: str):
    with session_scope() as session:
        account = get_account(session, slug)
    return get_gateway().retrieve_subscription(account.stripe_subscription_id)


def open_account(page: Page, launch, slug: str) -> None:
    page.goto(launch(slug))
    expect(page.locator("#summary-card")).to_be_visible()


def test_add_license_form_validates_and_double_click_buys_once(page: Page, launch, make_account):
    slug = make_account(licenses=10)
    open_account(page, launch, slug)
    page.get_by_role("button", name="Purchase Additional License").click()
    dialog = page.get_by_role("dialog", name="Purchase Form")
    count = dialog.get_by_label("How many extra licenses?")
    add = dialog.get_by_role("button", name="Add License")
    agree = dialog.get_by_role("checkbox", name="I Agree")
    # (A number input refuses letters outright; text is refused by the service tests.)
    for bad in ("0", "-1", "1001", "2.5", ""):
        count.fill(bad)
        expect(dialog).to_contain_text("Enter a whole number of licenses from 1 to 1000.")
        expect(add).to_be_disabled()
    count.fill("2")
    expect(dialog.locator("#license-preview")).to_contain_text("Charged today (prorated)")
    expect(dialog.locator("#license-preview")).to_contain_text("$96.00 per month")
    expect(add).to_be_disabled()  # not before "I Agree"
    agree.click()
    expect(add).to_be_enabled()
    add.dblclick()
    expect(page.locator("#licenses-summary")).to_have_text("0 of 12 licenses used")
    expect(page.get_by_text("Added 2 licenses")).to_be_visible()
    assert stripe_subscription(slug).quantity == 12


def test_change_card_declined_then_accepted(page: Page, launch, make_account):
    slug = make_account(licenses=1)
    open_account(page, launch, slug)
    page.get_by_role("button", name="Update Credit Card").click()
    dialog = page.get_by_role("dialog", name="Update Credit Card")
    expect(dialog).to_contain_text("Visa ending 4242")
    dialog.get_by_role("link", name="Change Card").click()
    expect(dialog).to_contain_text("MM/YYYY")
    fill_card(dialog, "4000000000000002")
    dialog.get_by_role("button", name="Save Card").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Your card was declined.")
    expect(page.locator("#summary-card")).to_contain_text("ending 4242")
    fill_card(dialog, "5555555555554444", expiry_year="33")
    dialog.get_by_label("Name on card").fill("Jane Doe")
    dialog.get_by_role("button", name="Save Card").click()
    expect(page.locator("#summary-card")).to_contain_text("ending 4444")
    expect(page.locator("#summary-card")).to_contain_text("12/2033")


def test_three_d_secure_cancelled_keeps_the_old_card(page: Page, launch, make_account):
    slug = make_account(licenses=1)
    open_account(page, launch, slug)
    page.get_by_role("button", name="Update Credit Card").click()
    dialog = page.get_by_role("dialog", name="Update Credit Card")
    dialog.get_by_role("link", name="Change Card").click()
    fill_card(dialog, "4000002500003155")
    dialog.get_by_role("button", name="Save Card").click()
    # localstripe's stand-in for the 3-D Secure challenge has no z-index and sits under the
    # dialog's backdrop (real Stripe's challenge is on top), so the click is dispatched to it.
    page.get_by_role("button", name="Fail authentication").dispatch_event("click")
    expect(dialog.get_by_role("alert")).to_contain_text("authentication failed")
    expect(page.locator("#summary-card")).to_contain_text("ending 4242")


def test_free_account_purchases_unlimited_yearly(page: Page, launch, make_account):
    slug = make_account()
    open_account(page, launch, slug)
    expect(page.locator("#summary-card")).to_contain_text("Free Version")
    page.get_by_role("button", name="Purchase Unlimited Version").click()
    dialog = page.get_by_role("dialog", name="Purchase Unlimited Version")
    dialog.get_by_label("Number of licenses").fill("4")
    dialog.get_by_text("Yearly — $80.00 per license per year").click()
    expect(dialog).to_contain_text("$320.00 per year")
    fill_card(dialog, "4242424242424242")
    subscribe = dialog.get_by_role("button", name="Subscribe")
    expect(subscribe).to_be_disabled()
    dialog.get_by_role("checkbox", name="I Agree").click()
    subscribe.click()
    card = page.locator("#summary-card")
    expect(card).to_contain_text("Unlimited Version")
    expect(card).to_contain_text("Yearly")
    expect(page.locator("#licenses-summary")).to_have_text("0 of 4 licenses used")
    subscription = stripe_subscription(slug)
    assert (subscription.quantity, subscription.interval) == (4, "year")


def test_convert_to_yearly_billing(page: Page, launch, make_account):
    slug = make_account(licenses=3)
    open_account(page, launch, slug)
    page.get_by_role("button", name="Convert to Yearly Billing").click()
    dialog = page.get_by_role("dialog", name="Convert to Yearly Billing")
    expect(dialog.locator("#yearly-preview")).to_contain_text("$240.00 per year")
    expect(dialog.locator("#yearly-preview")).to_contain_text("Charged now")
    dialog.get_by_role("button", name="Switch to Yearly").click()
    expect(page.locator("#summary-card")).to_contain_text("Yearly")
    expect(page.get_by_role("button", name="Convert to Yearly Billing")).to_have_count(0)
    assert stripe_subscription(slug).interval == "year"


def test_cancel_needs_a_reason_then_cancels_at_period_end_and_resumes(page: Page, launch, make_account):
    slug = make_account(licenses=2)
    open_account(page, launch, slug)
    page.get_by_role("button", name="Cancel Subscription").click()
    dialog = page.get_by_role("dialog", name="Cancel Subscription")
    proceed = dialog.get_by_role("button", name="Proceed with Cancellation")
    expect(proceed).to_be_disabled()
    dialog.get_by_label("Reason for Cancelling").fill("x" * 10_000)
    proceed.click()
    expect(dialog.get_by_role("alert")).to_contain_text("under 2000 characters")
    assert not stripe_subscription(slug).cancel_at_period_end
    dialog.get_by_label("Reason for Cancelling").fill("We are merging with another company")
    dialog.get_by_label("Additional Features").fill("A shared team inbox")
    proceed.click()
    expect(page.locator("#summary-card")).to_contain_text("Cancels on")
    assert stripe_subscription(slug).cancel_at_period_end
    page.get_by_role("button", name="Resume Subscription").click()
    expect(page.get_by_role("button", name="Cancel Subscription")).to_be_visible()
    expect(page.locator("#summary-card")).not_to_contain_text("Cancels on")
    assert not stripe_subscription(slug).cancel_at_period_end


def test_failed_payment_banner_until_a_new_card_pays(page: Page, launch, make_account):
    slug = make_account(licenses=10)
    with session_scope() as session:
        customer_id = get_account(session, slug).stripe_customer_id
    get_gateway().attach_default_card(customer_id, "pm_card_chargeCustomerFail", idempotency_key=f"{slug}-failing")
    open_account(page, launch, slug)
    page.get_by_role("button", name="Purchase Additional License").click()
    dialog = page.get_by_role("dialog", name="Purchase Form")
    dialog.get_by_label("How many extra licenses?").fill("5")
    expect(dialog.locator("#license-preview")).to_contain_text("$120.00 per month")
    dialog.get_by_role("checkbox", name="I Agree").click()
    dialog.get_by_role("button", name="Add License").click()
    banner = page.locator("#payment-failed")
    expect(banner).to_contain_text("failed")
    page.get_by_role("button", name="Update Credit Card").click()
    card_dialog = page.get_by_role("dialog", name="Update Credit Card")
    expect(card_dialog).to_contain_text("also pays the open invoice")
    card_dialog.get_by_role("link", name="Change Card").click()
    fill_card(card_dialog, "4242424242424242")
    card_dialog.get_by_role("button", name="Save Card").click()
    expect(page.get_by_text("is paid")).to_be_visible()
    expect(banner).to_have_count(0)
