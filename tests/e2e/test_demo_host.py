"""The demo connector host: its `$` button opens the Billing Page in the sidebar with a launch link
its own backend signed, and its account switch opens the other demo account.

The host runs as `billing-admin run` starts it (Stack.start_demo_host), on a free port. The app
under test only lets `BILLING_FRAME_ANCESTORS` frame it, which tests/conftest.py sets to `'self'
http://connector.test` for the whole run (the app is started once per run); so rather than restart
the app with the host's origin added, Playwright serves the host's own page at
http://connector.test/ and proxies its `/api/launch-link` to the real host process. The page, the
signing backend and the framing are thus the real ones; only the origin the browser sees differs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from playwright.sync_api import Route, expect

from billing_app.db import session_scope
from billing_app.runner import Stack
from billing_app.services import seats
from billing_app.services.accounts import get_account
from billing_app.settings import Settings
from tests.e2e.helpers import ISSUED_SECRETS
from tests.e2e.test_accessibility import assert_accessible

pytestmark = pytest.mark.e2e

CONNECTOR_ORIGIN = "http://connector.test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def demo_host(app_settings: Settings) -> Iterator[str]:
    settings = app_settings.model_copy(update={"billing_demo_host_port": _free_port()})
    with Stack(settings) as stack:
        stack.start_demo_host()
        yield f"http://127.0.0.1:{settings.billing_demo_host_port}"


def _serve_host_as_connector(route: Route, host: str) -> None:
    path = route.request.url.removeprefix(CONNECTOR_ORIGIN)
    response = route.fetch(url=f"{host}{path}")
    if path == "/api/launch-link":
        # The end-of-run leak check looks for every launch token the tests were handed.
        ISSUED_SECRETS.append(response.json()["url"].split("launch=", 1)[1])
    route.fulfill(response=response)


def test_dollar_button_opens_the_billing_page_and_the_switch_changes_account(
    browser, demo_host, artifacts
):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.route(f"{CONNECTOR_ORIGIN}/**", lambda route: _serve_host_as_connector(route, demo_host))
    page.goto(f"{CONNECTOR_ORIGIN}/")

    page.get_by_role("button", name="Billing").click()
    frame = page.frame_locator('iframe[title="Billing Page"]')
    expect(frame.get_by_role("heading", name="Acme Corp")).to_be_visible()
    expect(frame.locator("#licenses-summary")).to_have_text("3 of 10 licenses used")
    page.screenshot(path=str(artifacts / "demo-host-1280.png"))
    assert_accessible(page, "Demo connector host with the Billing Page in its sidebar")

    page.get_by_role("button", name="Switch to Globex").click()
    expect(frame.get_by_role("heading", name="Globex")).to_be_visible()
    expect(page.get_by_role("button", name="Switch to Acme Corp")).to_be_visible()
    context.close()


def _demo_users() -> list[str]:
    with session_scope() as session:
        return [
            user.email for user in seats.list_users(session, get_account(session, "demo").id).users
        ]


@pytest.fixture
def carol_restored() -> Iterator[str]:
    """carol@acme.test, activated again after the test: the other tests count the demo's 3 users."""
    email = "carol@acme.test"
    yield email
    with session_scope() as session:
        seats.activate(session, get_account(session, "demo").id, email, actor="tests")


def test_a_user_removed_in_the_sidebar_and_the_session_surviving_a_host_reload(
    browser, demo_host, carol_restored, artifacts
):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    launches: list[str] = []
    page.on(
        "request",
        lambda request: launches.append(request.url) if "/api/launch-link" in request.url else None,
    )
    page.route(f"{CONNECTOR_ORIGIN}/**", lambda route: _serve_host_as_connector(route, demo_host))
    page.goto(f"{CONNECTOR_ORIGIN}/")
    page.get_by_role("button", name="Billing").click()
    frame = page.frame_locator('iframe[title="Billing Page"]')
    expect(frame.get_by_role("heading", name="Acme Corp")).to_be_visible()

    frame.get_by_role("tab", name="User Management").click()
    frame.get_by_role("button", name=f"Remove {carol_restored}", exact=True).click()
    frame.get_by_role("alertdialog").get_by_role("button", name="Yes").click()
    expect(frame.get_by_text(f"{carol_restored} was removed")).to_be_visible()
    expect(frame.locator(".user-row")).to_have_count(2)
    assert _demo_users() == ["alice@acme.test", "bob@acme.test"]

    # The sidebar comes back signed in after the host page reloads, without a new launch link:
    # the page's session lives in the frame's sessionStorage of this tab.
    page.reload()
    expect(frame.get_by_role("heading", name="Acme Corp")).to_be_visible()
    expect(frame.locator("#licenses-summary")).to_have_text("2 of 10 licenses used")
    assert len(launches) == 1
    page.screenshot(path=str(artifacts / "demo-host-reloaded-1280.png"))
    context.close()
