"""The "User Management" tab in a real browser: remove users, add users, allowed email domains."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from billing_app.db import session_scope
from billing_app.services.accounts import get_account
from billing_app.services.domains import allowed_domains
from tests.e2e.helpers import settled

pytestmark = pytest.mark.e2e


def open_users_tab(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="User Management").click()
    expect(page.get_by_role("heading", name="Activated Add-on users")).to_be_visible()


def _licensed(base_url: str, key: str, email: str) -> bool:
    response = httpx.get(
        f"{base_url}/api/v1/licenses/check",
        params={"email": email},
        headers={"Authorization": f"Bearer {key}"},
    )
    return response.json()["licensed"]


def _saved_domains(slug: str) -> list[str]:
    with session_scope() as session:
        return allowed_domains(session, get_account(session, slug).id)


def test_remove_a_user_after_confirmation(page: Page, launch, seat_account, base_url):
    slug, domain, key = seat_account(licenses=10, users=3)
    open_users_tab(page, launch(slug))
    expect(page.locator(".user-row")).to_have_count(3)
    expect(page.locator("#users-licenses")).to_have_text("3 of 10 licenses used")

    page.get_by_role("button", name=f"Remove user2@{domain}", exact=True).click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(f"user2@{domain}")
    dialog.get_by_role("button", name="No").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".user-row")).to_have_count(3)

    page.get_by_role("button", name=f"Remove user2@{domain}", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Yes").click()
    expect(page.get_by_text(f"user2@{domain} was removed")).to_be_visible()
    expect(page.locator(".user-row")).to_have_count(2)
    expect(page.get_by_text(f"user2@{domain}", exact=True)).to_have_count(0)
    expect(page.locator("#users-licenses")).to_have_text("2 of 10 licenses used")
    # The summary counts changed too, without a reload; the connector is refused at its next check.
    page.get_by_role("tab", name="Plan").click()
    expect(page.locator("#licenses-summary")).to_have_text("2 of 10 licenses used")
    assert settled(lambda: _licensed(base_url, key, f"user2@{domain}"), False) is False


def test_added_domain_lets_the_api_activate_its_users(page: Page, launch, seat_account, base_url):
    slug, domain, key = seat_account()
    open_users_tab(page, launch(slug))
    expect(page.get_by_text(domain, exact=True)).to_be_visible()  # the admin's own domain
    page.get_by_role("button", name="Add domain").click()
    page.get_by_label("Allowed domain 1").fill("  @Partner.Example ")
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_text("Allowed domains updated.")).to_be_visible()
    expect(page.get_by_label("Allowed domain 1")).to_have_value("partner.example")
    assert _saved_domains(slug) == sorted([domain, "partner.example"])

    response = httpx.post(
        f"{base_url}/api/v1/licenses/activate",
        json={"email": "bob@partner.example"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert (response.status_code, response.json()["licensed"]) == (200, True)


@pytest.mark.parametrize(
    "typed, message",
    [
        ("gmail.com", "gmail.com is a public email provider"),
        ("not a domain", "is not a valid domain"),
        ("bob@partner.example", "is an email address"),
    ],
)
def test_invalid_domain_shows_a_message_and_saves_nothing(
    page: Page, launch, seat_account, typed, message
):
    slug, domain, _key = seat_account()
    open_users_tab(page, launch(slug))
    page.get_by_role("button", name="Add domain").click()
    page.get_by_label("Allowed domain 1").fill("partner.example")
    page.get_by_role("button", name="Add domain").click()
    page.get_by_label("Allowed domain 2").fill(typed)
    page.get_by_role("button", name="Update").click()
    expect(page.locator("#domain-error")).to_contain_text(message)
    assert _saved_domains(slug) == [domain]


def overlap(a, b) -> bool:
    assert a is not None and b is not None
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def test_removed_domain_users_stay_until_released(page: Page, launch, seat_account, base_url):
    slug, _domain, key = seat_account()
    page.set_viewport_size({"width": 320, "height": 568})  # a short sidebar
    open_users_tab(page, launch(slug))
    page.get_by_role("button", name="Add domain").click()
    page.get_by_label("Allowed domain 1").fill("partner.example")
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_text("Allowed domains updated.")).to_be_visible()
    for name in ("ann", "ben"):
        httpx.post(
            f"{base_url}/api/v1/licenses/activate",
            json={"email": f"{name}@partner.example"},
            headers={"Authorization": f"Bearer {key}"},
        ).raise_for_status()

    page.get_by_role("button", name="Remove domain partner.example").click()
    page.get_by_role("button", name="Update").click()
    offer = page.locator("#orphaned-users")
    expect(offer).to_contain_text("2 users of partner.example still hold licenses.")
    assert _licensed(base_url, key, "ann@partner.example")
    # The toast saying so stays clear of the offer's buttons (at the bottom it covered them, and a
    # click there landed on it).
    release = offer.get_by_role("button", name="Release them")
    toasts = page.locator("[data-sonner-toast]")
    expect(toasts.first).to_be_visible()
    release.scroll_into_view_if_needed()
    for toast in toasts.all():
        assert not overlap(toast.bounding_box(), release.bounding_box())
    release.click()
    expect(page.get_by_text("2 users released.")).to_be_visible()
    expect(page.locator("#users-licenses")).to_have_text("2 of 10 licenses used")
    assert settled(lambda: _licensed(base_url, key, "ann@partner.example"), False) is False


def test_admin_adds_a_user_with_the_api_rules(page: Page, launch, seat_account):
    slug, domain, _key = seat_account(licenses=3, users=2)
    open_users_tab(page, launch(slug))
    email_box = page.get_by_label("Add a user")
    email_box.fill("stranger@elsewhere.test")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#add-user-error")).to_have_text(
        "elsewhere.test is not an email domain allowed to use licenses of this account."
    )
    email_box.fill(f" New.Person@{domain.upper()} ")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_text(f"new.person@{domain} now uses a license.")).to_be_visible()
    expect(page.locator(".user-row")).to_have_count(3)
    expect(page.locator("#users-licenses")).to_have_text("3 of 3 licenses used")
    expect(email_box).to_have_value("")
    expect(page.get_by_role("button", name="Add user")).to_be_enabled()
    email_box.fill(f"one.more@{domain}")
    email_box.press("Enter")
    expect(page.locator("#add-user-error")).to_contain_text("No free license: all 3 are in use.")


def test_more_users_than_licenses_warns_and_refuses_new_ones(page: Page, launch, seat_account):
    slug, domain, _key = seat_account(licenses=2, users=5)
    page.goto(launch(slug))
    expect(page.locator("#over-licensed-banner")).to_have_text(
        "5 users are active but only 2 licenses are purchased: remove users in User Management or "
        "purchase more."
    )
    # Full, not empty: 5 of 2 is past the bar's end.
    expect(page.get_by_role("progressbar", name="Licenses used")).to_have_attribute(
        "aria-valuenow", "100"
    )
    page.get_by_role("tab", name="User Management").click()
    expect(page.locator("#over-licensed-warning")).to_contain_text("remove 3 users")
    page.get_by_label("Add a user").fill(f"late@{domain}")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#add-user-error")).to_have_text(
        "5 users are active but only 2 licenses are purchased: remove 3 users or purchase more "
        "licenses before adding new ones."
    )
    expect(page.locator(".user-row")).to_have_count(5)


def test_search_and_pages(page: Page, launch, seat_account):
    slug, domain, _key = seat_account(licenses=100, users=60)
    open_users_tab(page, launch(slug))
    expect(page.locator("#users-range")).to_have_text("1–25 of 60")
    expect(page.locator(".user-row")).to_have_count(25)
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#users-range")).to_have_text("26–50 of 60")
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#users-range")).to_have_text("51–60 of 60")
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_label("Search users").fill("user5")
    # user5, user50 … user59
    expect(page.locator("#users-range")).to_have_text("1–11 of 11")
    expect(page.get_by_text(f"user5@{domain}", exact=True)).to_be_visible()
    page.get_by_label("Search users").fill("nobody-here")
    expect(page.get_by_text("No user matches your search.")).to_be_visible()


def test_screenshots_user_management(browser, launch, seat_account, artifacts):
    slug, domain, _key = seat_account(licenses=4, users=6)
    for width, height in ((360, 780), (1280, 900)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        open_users_tab(page, launch(slug))
        expect(page.locator(".user-row")).to_have_count(6)
        page.get_by_role("button", name="Add domain").click()
        page.get_by_label("Allowed domain 1").fill("gmail.com")
        page.get_by_role("button", name="Update").click()
        expect(page.locator("#domain-error")).to_be_visible()
        page.screenshot(path=artifacts / f"users-{width}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.get_by_role("button", name=re.compile(f"^Remove user1@{re.escape(domain)}$")).click()
        expect(page.get_by_role("alertdialog")).to_be_visible()
        page.wait_for_timeout(400)  # the dialog's fade-in
        page.screenshot(path=artifacts / f"users-confirm-{width}.png")
        context.close()
