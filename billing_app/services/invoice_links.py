"""Invoice PDF links: minted on click for one signed-in tab, single-use, short-lived.

The rule: a PDF goes only to a signed-in session of the owning account. The page lives in
a cross-origin iframe, where a cookie cannot carry that session: browsers block or
partition third-party cookies, and the PDF opens in a new top-level tab, whose cookie jar
is not the iframe's partition anyway. So the link carries it, and is made as weak a
bearer credential as possible:

* minted only when the signed-in tab asks for it ("Open" / "Download"), never put in
  the page beforehand, so there is nothing to copy from the DOM, a screenshot or a log;
* bound to the tab's server-side page session (`PageSession`, deleted when the tab signs
  out, goes idle or is re-launched) and to the account's session epoch (bumped when the
  password changes): a link from a signed-out tab, or from before a password change, is
  refused;
* single-use (`InvoiceLinkUse`): the tab's own navigation spends it at once, so a link
  read later (browser history, a proxy log, a shoulder) is worthless, and a copy can
  never work in another browser in addition to the tab's own use;
* valid `BILLING_PDF_LINK_TTL_SECONDS` (10–60 s): just long enough to start the download.

The HMAC-SHA256 (key derived from the launch secret, `Settings.pdf_link_secret`) covers
the account, invoice, page session, epoch, link id, expiry and the tab's language (the PDF is
written in it). Whether the disposition is inline or attachment is not signed: it grants nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from billing_app.i18n import DEFAULT_LOCALE, SUPPORTED_LOCALES
from billing_app.settings import Settings

PDF_PATH = "/api/invoices/{invoice_id}/pdf"
_INVOICE_ID = re.compile(r"in_[A-Za-z0-9_]{1,250}")
_DIGITS = re.compile(r"[0-9]{1,12}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class InvalidInvoiceLink(Exception):
    """The link is malformed, forged, tampered with, expired, used, or its session ended (reason for
    logs only)."""


@dataclass(frozen=True)
class InvoiceLink:
    account_id: int
    invoice_id: str
    page_session_id: str
    session_epoch: int
    link_id: str
    expires_at: int
    locale: str = DEFAULT_LOCALE


def _signature(key: bytes, link: InvoiceLink) -> str:
    message = "\n".join(
        map(
            str,
            (
                link.account_id,
                link.invoice_id,
                link.page_session_id,
                link.session_epoch,
                link.link_id,
                link.expires_at,
                link.locale,
            ),
        )
    ).encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def invoice_pdf_url(
    settings: Settings,
    *,
    account_id: int,
    invoice_id: str,
    page_session_id: str,
    session_epoch: int,
    download: bool = False,
    locale: str = DEFAULT_LOCALE,
    now: float | None = None,
) -> str:
    """A new single-use link to the invoice's PDF for the tab of `page_session_id`, in its
    `locale`."""
    if not _INVOICE_ID.fullmatch(invoice_id):
        raise ValueError(f"not a Stripe invoice id: {invoice_id!r}")
    link = InvoiceLink(
        account_id,
        invoice_id,
        page_session_id,
        session_epoch,
        secrets.token_urlsafe(18),
        int(time.time() if now is None else now) + settings.billing_pdf_link_ttl_seconds,
        locale,
    )
    query = {
        "account": link.account_id,
        "session": link.page_session_id,
        "epoch": link.session_epoch,
        "link": link.link_id,
        "expires": link.expires_at,
        "locale": link.locale,
        "signature": _signature(settings.pdf_link_secret, link),
    }
    if download:
        query["download"] = 1
    return f"{settings.public_url}{PDF_PATH.format(invoice_id=invoice_id)}?{urlencode(query)}"


def verify_invoice_link(
    settings: Settings, invoice_id: str, query: Mapping[str, str], *, now: float | None = None
) -> InvoiceLink:
    """The link's claims if its shape, signature and expiry hold; the caller then redeems it
    against the database (`page_sessions.redeem_invoice_link`)."""
    account, session, epoch, link_id, expires, signature = (
        query.get(name, "")
        for name in ("account", "session", "epoch", "link", "expires", "signature")
    )
    locale = query.get("locale", DEFAULT_LOCALE)
    if not (
        locale in SUPPORTED_LOCALES
        and _INVOICE_ID.fullmatch(invoice_id)
        and _DIGITS.fullmatch(account)
        and _TOKEN.fullmatch(session)
        and _DIGITS.fullmatch(epoch)
        and _TOKEN.fullmatch(link_id)
        and _DIGITS.fullmatch(expires)
        and _SIGNATURE.fullmatch(signature)
    ):
        raise InvalidInvoiceLink("malformed")
    link = InvoiceLink(int(account), invoice_id, session, int(epoch), link_id, int(expires), locale)
    if not hmac.compare_digest(_signature(settings.pdf_link_secret, link), signature):
        raise InvalidInvoiceLink("bad signature")
    if link.expires_at <= (time.time() if now is None else now):
        raise InvalidInvoiceLink("expired")
    return link
