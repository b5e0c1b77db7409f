"""Signed, short-lived links to one invoice PDF of one account.

The Billing Page lives in a cross-origin iframe where cookies cannot be relied
on, so the link itself is the credential: an HMAC-SHA256 over (account id,
invoice id, expiry) with a key derived from the launch secret
(`Settings.pdf_link_secret`). Links are signed only for a tab bound to the
account, when its invoice list loads. Whether the disposition is inline or
attachment is not signed: it grants nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from billing_app.settings import Settings

PDF_PATH = "/api/invoices/{invoice_id}/pdf"
_INVOICE_ID = re.compile(r"^in_[A-Za-z0-9_]{1,250}$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")


class InvalidInvoiceLink(Exception):
    """The link is malformed, forged, tampered with or expired (the reason is for logs only)."""


@dataclass(frozen=True)
class InvoiceLink:
    account_id: int
    invoice_id: str
    expires_at: int


def _signature(key: bytes, account_id: int, invoice_id: str, expires_at: int) -> str:
    message = f"{account_id}\n{invoice_id}\n{expires_at}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def invoice_pdf_url(settings: Settings, account_id: int, invoice_id: str, *,
                    download: bool = False, now: float | None = None) -> str:
    if not _INVOICE_ID.match(invoice_id):
        raise ValueError(f"not a Stripe invoice id: {invoice_id!r}")
    expires_at = int(time.time() if now is None else now) + settings.billing_pdf_link_ttl_seconds
    query = {
        "account": account_id,
        "expires": expires_at,
        "signature": _signature(settings.pdf_link_secret, account_id, invoice_id, expires_at),
    }
    if download:
        query["download"] = 1
    return f"{settings.public_url}{PDF_PATH.format(invoice_id=invoice_id)}?{urlencode(query)}"


def verify_invoice_link(settings: Settings, invoice_id: str, query: Mapping[str, str], *,
                        now: float | None = None) -> InvoiceLink:
    account, expires, signature = (query.get(name, "") for name in ("account", "expires", "signature"))
    if not (_INVOICE_ID.match(invoice_id) and _DIGITS.match(account) and _DIGITS.match(expires)
            and _SIGNATURE.match(signature)):
        raise InvalidInvoiceLink("malformed")
    link = InvoiceLink(int(account), invoice_id, int(expires))
    expected = _signature(settings.pdf_link_secret, link.account_id, invoice_id, link.expires_at)
    if not hmac.compare_digest(expected, signature):
        raise InvalidInvoiceLink("bad signature")
    if link.expires_at <= (time.time() if now is None else now):
        raise InvalidInvoiceLink("expired")
    return link
