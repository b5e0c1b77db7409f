"""The demo connector host signs launch links itself (as the connector does): the app accepts
them."""

import warnings
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from billing_app.demo_host import DEMO_ACCOUNTS, app, connector_launch_token, launch_link
from billing_app.services.launch_tokens import InvalidLaunchToken, verify_launch_token
from billing_app.settings import get_settings

with warnings.catch_warnings():
    # Starlette now prefers the `httpx2` package; the pinned httpx still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

SECRET = b"c" * 32


def test_a_token_the_connector_signs_is_accepted_by_the_app():
    token = connector_launch_token(SECRET, "demo", "admin@acme.test", 600, now=1000)
    claims = verify_launch_token(SECRET, token, now=1500)
    assert (claims.account, claims.email, claims.expires_at) == ("demo", "admin@acme.test", 1600)
    with pytest.raises(InvalidLaunchToken, match="bad signature"):
        verify_launch_token(b"x" * 32, token, now=1500)


def test_the_hosts_launch_link_opens_the_account_on_the_app():
    settings = get_settings()
    url = launch_link(settings, "free-demo")
    assert url.startswith(f"{settings.public_url}/?launch=")
    claims = verify_launch_token(settings.launch_secret, parse_qs(urlsplit(url).query)["launch"][0])
    assert (claims.account, claims.email) == ("free-demo", "admin@globex.test")


def test_the_launch_link_route_serves_only_the_demo_accounts():
    client = TestClient(app)
    page = client.get("/")
    assert 'aria-label="Billing"' in page.text and "Globex" in page.text
    answer = client.post("/api/launch-link", json={"account": "demo"})
    assert answer.status_code == 200
    assert answer.json()["url"].startswith(get_settings().public_url)
    assert client.post("/api/launch-link", json={"account": "other"}).status_code == 404
    assert client.post("/api/launch-link", content=b"nope").status_code == 400
    assert set(DEMO_ACCOUNTS) == {"demo", "free-demo"}
