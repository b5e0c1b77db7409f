"""Every response of the production app carries the embedding and hardening headers."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("path", ["/", "/ping", "/?launch=forged.token", "/favicon.ico", "/no-such-page", "/_event/"])
def test_security_headers_on_every_response(base_url: str, path: str):
    response = httpx.get(base_url + path, timeout=10)
    assert response.headers["content-security-policy"] == "frame-ancestors 'self' http://connector.test"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("method, path, status", [
    ("POST", "/api/stripe/webhook", 400),
    ("GET", "/api/v1/licenses/check?email=a@acme.test", 401),
    ("POST", "/api/v1/licenses/activate", 401),
    ("GET", "/api/invoices/in_nothing/pdf?account=1&expires=1&signature=x", 403),
])
def test_security_headers_on_api_responses(base_url: str, method: str, path: str, status: int):
    response = httpx.request(method, base_url + path, content=b"{}", timeout=10)
    assert response.status_code == status
    assert response.headers["content-security-policy"] == "frame-ancestors 'self' http://connector.test"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_page_html_has_no_built_with_badge(base_url: str):
    html = httpx.get(base_url + "/", timeout=10).text
    assert "Built with Reflex" not in html
