"""Signed-in tabs, as the server knows them: what invoice PDF links are checked against.

A tab's `PageSession` row exists from its sign-in until its binding ends (PageState
deletes it), or, for a tab closed while signed in, until a sign-in's lifetime has
passed. The PDF route is plain HTTP, outside the tab's Reflex state, so it asks this
table whether the tab that minted a link is still signed in.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from billing_app.models import Account, InvoiceLinkUse, PageSession, utcnow
from billing_app.services.invoice_links import InvalidInvoiceLink, InvoiceLink


def start_page_session(session: Session, account_id: int, *, lifetime: timedelta) -> str:
    """A new page session of the account; returns its id (random, known only to the tab's
    server-side state). The rows older than a sign-in's `lifetime` go: tabs closed without
    signing out leave theirs behind, and none of those tabs can be signed in any more."""
    session.exec(sa.delete(PageSession).where(col(PageSession.created_at) < utcnow() - lifetime))
    page_session_id = secrets.token_urlsafe(32)
    session.add(PageSession(id=page_session_id, account_id=account_id))
    return page_session_id


def end_page_session(session: Session, page_session_id: str) -> None:
    session.exec(sa.delete(PageSession).where(col(PageSession.id) == page_session_id))


def redeem_invoice_link(session: Session, link: InvoiceLink) -> None:
    """Spend a verified link, or raise InvalidInvoiceLink: its tab is no longer signed in, the
    password changed since it was minted, or it was used before."""
    page_session = session.get(PageSession, link.page_session_id)
    if page_session is None or page_session.account_id != link.account_id:
        raise InvalidInvoiceLink("page session ended")
    account = session.get(Account, link.account_id)
    if account is None or account.session_epoch != link.session_epoch:
        raise InvalidInvoiceLink("password changed")
    # Used links are useless once expired. Deleted first: this write opens the transaction, so the
    # savepoint below nests in it (as for launch tokens, see accounts.redeem_launch_token).
    session.exec(sa.delete(InvoiceLinkUse).where(col(InvoiceLinkUse.expires_at) < utcnow()))
    try:
        with session.begin_nested():
            session.add(
                InvoiceLinkUse(
                    link_id=link.link_id, expires_at=datetime.fromtimestamp(link.expires_at, UTC)
                )
            )
    except IntegrityError as exc:
        raise InvalidInvoiceLink("already used") from exc
