"""Page passwords: the prompt shows nothing of the account, lockout, Change Password, the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from billing_app.runner import PROJECT_ROOT
from tests.e2e.helpers import ISSUED_SECRETS

pytestmark = pytest.mark.e2e

PASSWORD = "Sesame-open-2026"
NEW_PASSWORD = "Another-long-secret-99"
ISSUED_SECRETS.extend([PASSWORD, NEW_PASSWORD])
# `python -m` from the project root: this checkout's code (the venv's billing-admin script may be
# another's).
CLI = [sys.executable, "-m", "billing_app.cli"]


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )


def protect(slug: str, password: str = PASSWORD) -> None:
    result = cli("set-password", slug, "--password-stdin", stdin=password + "\n")
    assert result.returncode == 0, result.stderr


def watch_websocket(page: Page) -> list[str]:
    frames: list[str] = []
    page.on(
        "websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload)))
    )
    return frames


def sign_in(page: Page, password: str) -> None:
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()


def test_prompt_shows_nothing_of_the_account_until_the_password_is_right(
    page: Page, launch, make_account
):
    slug = make_account(licenses=2)
    protect(slug)
    frames = watch_websocket(page)
    page.goto(launch(slug))
    expect(page.get_by_role("button", name="Sign In")).to_be_visible()
    name = f"Shop {slug[-4:]}"
    for secret in (name, f"boss@{slug}.test", "4242", "Unlimited"):
        assert secret not in page.content()
        assert not any(secret in frame for frame in frames), secret
    sign_in(page, "not the password")
    expect(page.get_by_role("alert")).to_have_text("Incorrect password. 4 attempts left.")
    assert name not in page.content()
    sign_in(page, PASSWORD)
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    # A reload keeps the tab signed in.
    page.reload()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def test_five_failures_lock_sign_in(page: Page, launch, make_account):
    slug = make_account()
    protect(slug)
    page.goto(launch(slug))
    for _ in range(5):
        sign_in(page, "wrong password")
        page.wait_for_timeout(300)
    expect(page.get_by_role("alert")).to_have_text(
        "Too many incorrect passwords. Try again in 15 minutes."
    )
    sign_in(page, PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("Too many incorrect passwords")
    assert "Shop" not in page.content()


def test_change_password_signs_out_other_sessions(browser, launch, make_account):
    slug = make_account(licenses=1)
    protect(slug)
    first, second = browser.new_context().new_page(), browser.new_context().new_page()
    for tab in (first, second):
        tab.goto(launch(slug))
        sign_in(tab, PASSWORD)
        expect(tab.get_by_role("button", name="Change Password")).to_be_visible()

    first.get_by_role("button", name="Change Password").click()
    dialog = first.get_by_role("dialog", name="Change Password")
    dialog.get_by_label("Current password").fill(PASSWORD)
    dialog.get_by_label("New password", exact=True).fill("short")
    dialog.get_by_label("Confirm new password").fill("short")
    dialog.get_by_role("button", name="Change Password").click()
    expect(dialog.get_by_role("alert")).to_have_text("Use at least 10 characters.")
    dialog.get_by_label("Current password").fill(PASSWORD)
    dialog.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    dialog.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    dialog.get_by_role("button", name="Change Password").click()
    expect(first.get_by_text("Password changed.")).to_be_visible()
    expect(first.locator("#summary-card")).to_be_visible()

    # The other tab's next action finds its session ended: back to the prompt.
    second.get_by_role("button", name="Purchase Additional License").click()
    expect(second.get_by_role("button", name="Sign In")).to_be_visible()
    sign_in(second, PASSWORD)
    expect(second.get_by_role("alert")).to_contain_text("Incorrect password")
    sign_in(second, NEW_PASSWORD)
    expect(second.locator("#summary-card")).to_be_visible()
    first.context.close()
    second.context.close()


def test_cli_set_and_clear_password_round_trip(page: Page, launch, make_account):
    slug = make_account()
    refused = cli(
        "set-password", slug, stdin=""
    )  # a pipe without the flag (a terminal would be prompted)
    assert refused.returncode == 1 and "--password-stdin" in refused.stderr
    too_short = cli("set-password", slug, "--password-stdin", stdin="short\n")
    assert too_short.returncode == 1 and "at least 10" in too_short.stderr
    unknown = cli("clear-password", "no-such-account")
    assert unknown.returncode == 1 and "No account" in unknown.stderr
    protect(slug)
    page.goto(launch(slug))
    expect(page.get_by_role("button", name="Sign In")).to_be_visible()
    cleared = cli("clear-password", slug)
    assert cleared.returncode == 0, cleared.stderr
    page.goto(launch(slug))
    expect(page.locator("#summary-card")).to_be_visible()
    expect(page.get_by_role("button", name="Change Password")).to_have_count(0)
