"""Every response of the production app carries the CSP and hardening headers; the page runs
under that CSP without a violation; the websocket refuses other sites' pages."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import fill_card

pytestmark = pytest.mark.e2e

FRAME_ANCESTORS = "frame-ancestors 'self' http://connector.test"


def assert_hardened(response: httpx.Response) -> None:
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'self'; script-src 'self' 'unsafe-eval' 'sha256-")
    assert "object-src 'none'; base-uri 'none'; form-action 'self'" in policy
    assert policy.endswith(FRAME_ANCESTORS)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    # The public URL of the tests is http://localhost: no HSTS (it is sent for https only).
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize(
    "path", ["/", "/ping", "/?launch=forged.token", "/favicon.ico", "/no-such-page", "/_event/"]
)
def test_security_headers_on_every_response(base_url: str, path: str):
    assert_hardened(httpx.get(base_url + path, timeout=10))


def test_the_page_is_never_cached(base_url: str):
    assert (
        httpx.get(base_url + "/?launch=forged.token", timeout=10).headers["cache-control"]
        == "no-store"
    )


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("POST", "/api/stripe/webhook", 400),
        ("GET", "/api/v1/licenses/check?email=a@acme.test", 401),
        ("POST", "/api/v1/licenses/activate", 401),
        ("GET", "/api/invoices/in_nothing/pdf?account=1&expires=1&signature=x", 403),
    ],
)
def test_security_headers_on_api_responses(base_url: str, method: str, path: str, status: int):
    response = httpx.request(method, base_url + path, content=b"{}", timeout=10)
    assert response.status_code == status
    assert_hardened(response)
    assert "no-store" in response.headers["cache-control"]


def test_page_html_has_no_built_with_badge(base_url: str):
    html = httpx.get(base_url + "/", timeout=10).text
    assert "Built with Reflex" not in html


def websocket_upgrade_status(base_url: str, origin: str) -> int:
    """The status line's code of a websocket upgrade of Reflex's event channel from `origin`."""
    url = urlsplit(base_url)
    request = (
        f"GET /_event/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {url.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as connection:
        connection.sendall(request.encode())
        return int(connection.recv(4096).split(b" ", 2)[1])


def test_the_websocket_refuses_other_origins(base_url: str):
    assert websocket_upgrade_status(base_url, base_url) == 101
    for foreign in (
        "http://evil.test",
        "http://connector.test",
        base_url.replace("localhost", "127.0.0.1"),
    ):
        assert websocket_upgrade_status(base_url, foreign) >= 400, foreign


def test_the_page_and_the_card_form_run_without_csp_violations(page: Page, launch, make_account):
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(launch(make_account(licenses=1)))
    expect(page.locator("#summary-card")).to_contain_text("ending 4242")
    # The card form: Stripe.js from its configured URL, mounted and confirmed through
    # rx.call_script.
    page.get_by_role("button", name="Update Credit Card").click()
    dialog = page.get_by_role("dialog", name="Update Credit Card")
    dialog.get_by_role("link", name="Change Card").click()
    fill_card(dialog, "5555555555554444", expiry_year="33")
    dialog.get_by_role("button", name="Save Card").click()
    expect(page.locator("#summary-card")).to_contain_text("ending 4444")
    assert violations == []
