"""Signed invoice PDF links: bound to one account, invoice, page session and epoch; short-lived,
unforgeable.

Their redemption (single use, live session, unchanged epoch) is
tests/security/test_invoice_link_theft.py."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from billing_app.services.invoice_links import (
    InvalidInvoiceLink,
    invoice_pdf_url,
    verify_invoice_link,
)
from billing_app.services.launch_tokens import sign_launch_token
from billing_app.settings import Settings

NOW = 1_800_000_000


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        _env_file=None,
        billing_data_dir=tmp_path,
        billing_launch_secret="s" * 40,
        billing_public_url="https://billing.example.com",
        billing_pdf_link_ttl_seconds=60,
    )


SESSION = "tab-session-0123456789abcdef"


def url_for(settings: Settings, account_id: int, invoice_id: str, **options) -> str:
    return invoice_pdf_url(
        settings,
        account_id=account_id,
        invoice_id=invoice_id,
        page_session_id=SESSION,
        session_epoch=3,
        **options,
    )


def split(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    invoice_id = parts.path.removeprefix("/api/invoices/").removesuffix("/pdf")
    return invoice_id, dict(parse_qsl(parts.query))


def test_a_link_names_its_account_invoice_session_epoch_and_expiry(settings):
    url = url_for(settings, 7, "in_1AbC", now=NOW)
    assert url.startswith("https://billing.example.com/api/invoices/in_1AbC/pdf?")
    invoice_id, query = split(url)
    link = verify_invoice_link(settings, invoice_id, query, now=NOW + 59)
    assert (
        link.account_id,
        link.invoice_id,
        link.page_session_id,
        link.session_epoch,
        link.expires_at,
    ) == (7, "in_1AbC", SESSION, 3, NOW + 60)
    assert "download" not in query


def test_each_link_has_an_id_of_its_own(settings):
    first, second = (split(url_for(settings, 7, "in_1AbC", now=NOW))[1]["link"] for _ in range(2))
    assert first != second


def test_download_links_verify_too(settings):
    invoice_id, query = split(url_for(settings, 7, "in_1AbC", download=True, now=NOW))
    assert query["download"] == "1"
    assert verify_invoice_link(settings, invoice_id, query, now=NOW).account_id == 7


def test_expired_link_is_refused(settings):
    invoice_id, query = split(url_for(settings, 7, "in_1AbC", now=NOW))
    with pytest.raises(InvalidInvoiceLink, match="expired"):
        verify_invoice_link(settings, invoice_id, query, now=NOW + 60)


@pytest.mark.parametrize(
    "field, value",
    [
        ("account", "8"),  # another account
        ("session", "another-tab-session-0123456789"),  # another tab
        ("epoch", "4"),  # after a password change
        ("link", "another-link-id-0123456789"),  # a used link's id renewed
        ("expires", str(NOW + 99_999)),  # a longer life
        ("locale", "de"),  # another language than the tab's
        ("signature", "0" * 64),
    ],
)
def test_tampered_link_is_refused(settings, field, value):
    invoice_id, query = split(url_for(settings, 7, "in_1AbC", now=NOW))
    with pytest.raises(InvalidInvoiceLink, match="bad signature"):
        verify_invoice_link(settings, invoice_id, {**query, field: value}, now=NOW)


def test_a_link_carries_the_language_of_its_tab(settings):
    invoice_id, query = split(url_for(settings, 7, "in_1AbC", locale="de", now=NOW))
    assert verify_invoice_link(settings, invoice_id, query, now=NOW).locale == "de"
    with pytest.raises(InvalidInvoiceLink, match="malformed"):
        verify_invoice_link(settings, invoice_id, {**query, "locale": "fr"}, now=NOW)


def test_another_invoice_with_the_same_signature_is_refused(settings):
    _, query = split(url_for(settings, 7, "in_1AbC", now=NOW))
    with pytest.raises(InvalidInvoiceLink, match="bad signature"):
        verify_invoice_link(settings, "in_1AbD", query, now=NOW)


def test_a_link_signed_with_another_secret_is_refused(settings, tmp_path):
    other = Settings(_env_file=None, billing_data_dir=tmp_path, billing_launch_secret="t" * 40)
    invoice_id, query = split(url_for(other, 7, "in_1AbC", now=NOW))
    with pytest.raises(InvalidInvoiceLink, match="bad signature"):
        verify_invoice_link(settings, invoice_id, query, now=NOW)


def test_the_link_key_is_not_the_launch_secret(settings):
    assert settings.pdf_link_secret != settings.launch_secret
    assert len(settings.pdf_link_secret) == 32
    # A launch token is no PDF signature.
    token = sign_launch_token(
        settings.launch_secret, account="demo", email="a@b.co", ttl_seconds=600
    )
    with pytest.raises(InvalidInvoiceLink):
        verify_invoice_link(
            settings,
            "in_1AbC",
            {
                "account": "1",
                "session": SESSION,
                "epoch": "0",
                "link": SESSION,
                "expires": str(NOW),
                "signature": token,
            },
            now=NOW,
        )


WELL_FORMED = {
    "account": "7",
    "session": SESSION,
    "epoch": "3",
    "link": SESSION,
    "expires": str(NOW + 60),
    "signature": "a" * 64,
}


@pytest.mark.parametrize(
    "invoice_id, changes",
    [
        ("in_1AbC", {name: None for name in WELL_FORMED}),
        ("in_1AbC", {"signature": None}),
        ("in_1AbC", {"session": None}),
        ("in_1AbC", {"link": "short"}),
        ("in_1AbC", {"session": "tab session with spaces!"}),
        ("in_1AbC", {"epoch": "-1"}),
        ("in_1AbC", {"account": "-7"}),
        ("in_1AbC", {"expires": "soon"}),
        ("in_1AbC", {"account": "7" * 40}),
        ("in_1AbC", {"account": "7\n"}),
        ("in_1AbC", {"signature": "A" * 64}),
        ("in_1AbC\n", {}),
        ("../../etc", {}),
        ("in_" + "x" * 300, {}),
    ],
)
def test_malformed_link_is_refused(settings, invoice_id, changes):
    query = {name: value for name, value in (WELL_FORMED | changes).items() if value is not None}
    with pytest.raises(InvalidInvoiceLink, match="malformed"):
        verify_invoice_link(settings, invoice_id, query, now=NOW)


def test_only_stripe_invoice_ids_get_links(settings):
    with pytest.raises(ValueError):
        url_for(settings, 7, "cus_123")


def test_default_lifetime_is_a_minute(tmp_path):
    settings = Settings(_env_file=None, billing_data_dir=tmp_path)
    _, query = split(url_for(settings, 1, "in_1", now=time.time()))
    assert 0 < int(query["expires"]) - time.time() <= 60
