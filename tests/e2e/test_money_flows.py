"""The money flows through the real page, Stripe.js (localstripe's) and localstripe."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from billing_app.db import session_scope
from billing_app.services.accounts import get_account
from billing_app.services.gateway import get_gateway
from billing_app.settings import get_settings
from tests.e2e.helpers import fill_card
from tests.integration.flows import card_payment_method, charge_a_renewal

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


def test_cancel_needs_a_reason_then_cancels_at_period_end_and_resumes(
    page: Page, launch, make_account
):
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


def open_renewal_invoice(slug: str, card: str) -> str:
    """What a renewal the card could not pay leaves: an open invoice (the emulator then tells the
    app by webhook, as Stripe does)."""
    with session_scope() as session:
        account = get_account(session, slug)
    gateway = get_gateway()
    gateway.attach_default_card(
        account.stripe_customer_id,
        card,
        idempotency_key=f"{slug}-renewal-card",
        subscription_id=account.stripe_subscription_id,
    )
    emulator = f"http://127.0.0.1:{get_settings().localstripe_port}"
    return charge_a_renewal(emulator, account.stripe_customer_id, 8000)


def wait_for_banner(page: Page, launch, slug: str, banner_id: str) -> None:
    """The webhook arrives about a second after the failure: reopen the page until it shows."""
    for _ in range(20):
        open_account(page, launch, slug)
        if page.locator(f"#{banner_id}").count():
            return
        page.wait_for_timeout(500)
    expect(page.locator(f"#{banner_id}")).to_be_visible()


def test_failed_payment_banner_until_a_new_card_pays(page: Page, launch, make_account):
    slug = make_account(licenses=10)
    open_renewal_invoice(slug, "pm_card_chargeCustomerFail")
    wait_for_banner(page, launch, slug, "payment-failed")
    banner = page.locator("#payment-failed")
    expect(banner).to_contain_text("$80.00")
    page.get_by_role("button", name="Update Credit Card").click()
    card_dialog = page.get_by_role("dialog", name="Update Credit Card")
    expect(card_dialog).to_contain_text("also pays the open invoice")
    card_dialog.get_by_role("link", name="Change Card").click()
    fill_card(card_dialog, "4242424242424242")
    card_dialog.get_by_role("button", name="Save Card").click()
    expect(page.get_by_text("is paid")).to_be_visible()
    expect(banner).to_have_count(0)


def complete_3d_secure(page: Page, outcome: str = "Complete authentication") -> None:
    # The emulator's stand-in for the bank's challenge has no z-index and may sit under a dialog's
    # backdrop (real Stripe's challenge is on top), so the click is dispatched to it.
    button = page.get_by_role("button", name=outcome)
    expect(button).to_be_visible()
    button.dispatch_event("click")


def test_add_licenses_with_a_3d_secure_card(page: Page, launch, make_account):
    slug = make_account(licenses=3)
    with session_scope() as session:
        account = get_account(session, slug)
    get_gateway().attach_default_card(
        account.stripe_customer_id,
        sca_payment_method(),
        idempotency_key=f"{slug}-sca",
        subscription_id=account.stripe_subscription_id,
    )
    open_account(page, launch, slug)
    page.get_by_role("button", name="Purchase Additional License").click()
    dialog = page.get_by_role("dialog", name="Purchase Form")
    dialog.get_by_label("How many extra licenses?").fill("2")
    expect(dialog.locator("#license-preview")).to_contain_text("$40.00 per month")
    dialog.get_by_role("checkbox", name="I Agree").click()
    dialog.get_by_role("button", name="Add License").click()
    # Nothing is granted while the bank asks.
    complete_3d_secure(page, "Fail authentication")
    expect(dialog.get_by_role("alert")).to_contain_text("Nothing was changed")
    expect(page.locator("#licenses-summary")).to_have_text("0 of 3 licenses used")
    assert stripe_subscription(slug).quantity == 3
    # The same form again, and this time the customer passes the challenge.
    dialog.get_by_role("button", name="Add License").click()
    complete_3d_secure(page)
    expect(page.get_by_text("Added 2 licenses")).to_be_visible()
    expect(page.locator("#licenses-summary")).to_have_text("0 of 5 licenses used")
    assert stripe_subscription(slug).quantity == 5


def test_upgrade_with_a_3d_secure_card(page: Page, launch, make_account):
    slug = make_account()
    open_account(page, launch, slug)
    page.get_by_role("button", name="Purchase Unlimited Version").click()
    dialog = page.get_by_role("dialog", name="Purchase Unlimited Version")
    dialog.get_by_label("Number of licenses").fill("2")
    fill_card(dialog, SCA_CARD)
    dialog.get_by_role("checkbox", name="I Agree").click()
    dialog.get_by_role("button", name="Subscribe").click()
    complete_3d_secure(page)  # saving the card
    complete_3d_secure(page)  # the first payment
    expect(page.locator("#summary-card")).to_contain_text("Unlimited Version")
    expect(page.locator("#licenses-summary")).to_have_text("0 of 2 licenses used")
    assert stripe_subscription(slug).quantity == 2


def test_a_renewal_the_bank_wants_confirmed_is_authenticated_from_the_banner(
    page: Page, launch, make_account
):
    slug = make_account(licenses=1)
    invoice_id = open_renewal_invoice(slug, sca_payment_method())
    wait_for_banner(page, launch, slug, "payment-needs-authentication")
    page.get_by_role("button", name="Authenticate Payment").click()
    complete_3d_secure(page)
    expect(page.get_by_text("the payment is confirmed")).to_be_visible()
    expect(page.locator("#payment-needs-authentication")).to_have_count(0)
    assert get_gateway().invoice_payment(invoice_id).paid


SCA_CARD = "4000002760003184"


def sca_payment_method() -> str:
    return card_payment_method(f"http://127.0.0.1:{get_settings().localstripe_port}", SCA_CARD)


def set_latency(path_prefix: str, seconds: float) -> None:
    """Make the emulator answer these requests late (0: on time again)."""
    emulator = f"http://127.0.0.1:{get_settings().localstripe_port}"
    httpx.post(
        f"{emulator}/_config/latency",
        data={"path_prefix": path_prefix, "seconds": str(seconds)},
        timeout=10,
    ).raise_for_status()


def test_a_slow_payment_service_never_resets_the_upgrade_form(page: Page, launch, make_account):
    slug = make_account()
    open_account(page, launch, slug)
    set_latency("/v1/setup_intents", 3)
    try:
        page.get_by_role("button", name="Purchase Unlimited Version").click()
        dialog = page.get_by_role("dialog", name="Purchase Unlimited Version")
        # The form is there at once; the user fills it in while the card form is still being
        # prepared.
        dialog.get_by_label("Number of licenses").fill("7")
        dialog.get_by_text("Yearly — $80.00 per license per year").click()
        dialog.get_by_role("checkbox", name="I Agree").click()
        expect(dialog.get_by_placeholder("number")).to_be_visible(timeout=20_000)
    finally:
        set_latency("/v1/setup_intents", 0)
    expect(dialog.get_by_label("Number of licenses")).to_have_value("7")
    expect(dialog.get_by_role("radio", name="Yearly — $80.00 per license per year")).to_be_checked()
    expect(dialog.get_by_role("checkbox", name="I Agree")).to_be_checked()
    expect(dialog).to_contain_text("$560.00 per year")
    fill_card(dialog, "4242424242424242")
    dialog.get_by_role("button", name="Subscribe").click()
    expect(page.locator("#licenses-summary")).to_have_text("0 of 7 licenses used")
    subscription = stripe_subscription(slug)
    assert (subscription.quantity, subscription.interval) == (7, "year")


def test_a_slow_price_preview_never_shows_the_price_of_an_older_number(
    page: Page, launch, make_account
):
    slug = make_account(licenses=2)
    open_account(page, launch, slug)
    set_latency("/v1/invoices/create_preview", 2)
    try:
        page.get_by_role("button", name="Purchase Additional License").click()
        dialog = page.get_by_role("dialog", name="Purchase Form")
        count = dialog.get_by_label("How many extra licenses?")
        count.fill("3")  # while the preview of 1 license is still on its way
        dialog.get_by_role("checkbox", name="I Agree").click()
        expect(dialog.locator("#license-preview")).to_contain_text(
            "$40.00 per month", timeout=20_000
        )
    finally:
        set_latency("/v1/invoices/create_preview", 0)
    expect(count).to_have_value("3")
    dialog.get_by_role("button", name="Add License").click()
    expect(page.locator("#licenses-summary")).to_have_text("0 of 5 licenses used")
