"""Signed invoice PDF links: bound to one account and one invoice, short-lived, unforgeable."""

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
    return Settings(_env_file=None, billing_data_dir=tmp_path, billing_launch_secret="s" * 40,
                    billing_public_url="https://billing.example.com", billing_pdf_link_ttl_seconds=900)


def split(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    invoice_id = parts.path.removeprefix("/api/invoices/").removesuffix("/pdf")
    return invoice_id, dict(parse_qsl(parts.query))


def test_a_link_names_its_account_invoice_and_expiry(settings):
    url = invoice_pdf_url(settings, 7, "in_1AbC", now=NOW)
    assert url.startswith("https://billing.example.com/api/invoices/in_1AbC/pdf?")
    invoice_id, query = split(url)
    link = verify_invoice_link(settings, invoice_id, query, now=NOW + 899)
    assert (link.account_id, link.invoice_id, link.expires_at) == (7, "in_1AbC", NOW + 900)
    assert "download" not in query


def test_download_links_verify_too(settings):
    invoice_id, query = split(invoice_pdf_url(settings, 7, "in_1AbC", download=True, now=NOW))
    assert query["download"] == "1"
    assert verify_invoice_link(settings, invoice_id, query, now=NOW).account_id == 7


def test_expired_link_is_refused(settings):
    invoice_id, query = split(invoice_pdf_url(settings, 7, "in_1AbC", now=NOW))
    with pytest.raises(InvalidInvoiceLink, match="expired"):
        verify_invoice_link(settings, invoice_id, query, now=NOW + 900)


@pytest.mark.parametrize("field, value", [
    ("account", "8"),  # another account
    ("expires", str(NOW + 99_999)),  # a longer life
    ("signature", "0" * 64),
])
def test_tampered_link_is_refused(settings, field, value):
    invoice_id, query = split(invoice_pdf_url(settings, 7, "in_1AbC", now=NOW))
    with pytest.raises(InvalidInvoiceLink, match="bad signature"):
        verify_invoice_link(settings, invoice_id, {**query, field: value}, now=NOW)


def test_another_invoice_with_the_same_signature_is_refused(settings):
    _, query = split(invoice_pdf_url(settings, 7, "in_1AbC", now=NOW))
    with pytest.raises(InvalidInvoiceLink, match="bad signature"):
        verify_invoice_link(settings, "in_1AbD", query, now=NOW)


def test_a_link_signed_with_another_secret_is_refused(settings, tmp_path):
    other = Settings(_env_file=None, billing_data_dir=tmp_path, billing_launch_secret="t" * 40)
    invoice_id, query = split(invoice_pdf_url(other, 7, "in_1AbC", now=NOW))
    with pytest.raises(InvalidInvoiceLink, match="bad signature"):
        verify_invoice_link(settings, invoice_id, query, now=NOW)


def test_the_link_key_is_not_the_launch_secret(settings):
    assert settings.pdf_link_secret != settings.launch_secret
    assert len(settings.pdf_link_secret) == 32
    # A launch token is no PDF signature.
    token = sign_launch_token(settings.launch_secret, account="demo", email="a@b.co", ttl_seconds=600)
    with pytest.raises(InvalidInvoiceLink):
        verify_invoice_link(settings, "in_1AbC", {"account": "1", "expires": str(NOW), "signature": token}, now=NOW)


@pytest.mark.parametrize("invoice_id, query", [
    ("in_1AbC", {}),
    ("in_1AbC", {"account": "7", "expires": str(NOW + 60)}),
    ("in_1AbC", {"account": "-7", "expires": str(NOW + 60), "signature": "a" * 64}),
    ("in_1AbC", {"account": "7", "expires": "soon", "signature": "a" * 64}),
    ("in_1AbC", {"account": "7" * 40, "expires": str(NOW + 60), "signature": "a" * 64}),
    ("in_1AbC", {"account": "7", "expires": str(NOW + 60), "signature": "A" * 64}),
    ("../../etc", {"account": "7", "expires": str(NOW + 60), "signature": "a" * 64}),
    ("in_" + "x" * 300, {"account": "7", "expires": str(NOW + 60), "signature": "a" * 64}),
])
def test_malformed_link_is_refused(settings, invoice_id, query):
    with pytest.raises(InvalidInvoiceLink, match="malformed"):
        verify_invoice_link(settings, invoice_id, query, now=NOW)


def test_only_stripe_invoice_ids_get_links(settings):
    with pytest.raises(ValueError):
        invoice_pdf_url(settings, 7, "cus_123")


def test_default_lifetime_is_short(tmp_path):
    settings = Settings(_env_file=None, billing_data_dir=tmp_path)
    _, query = split(invoice_pdf_url(settings, 1, "in_1", now=time.time()))
    assert 0 < int(query["expires"]) - time.time() <= 900
