"""GET /api/invoices/{invoice_id}/pdf: an invoice PDF, for a signed link only (see
services/invoice_links.py).

Open shows it in the browser's viewer (inline), Download saves it (attachment).
A malformed, forged, expired or used link, or one whose tab signed out (or whose
account's password changed) since, is a 403; a valid link whose invoice the account
does not have (any more) a 404; both with the same short text, so a refusal tells
nothing about accounts, sessions or invoices.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from billing_app.db import session_scope
from billing_app.i18n import DEFAULT_LOCALE, N_, _, use_locale
from billing_app.services.gateway import get_gateway
from billing_app.services.invoice_links import PDF_PATH, InvalidInvoiceLink, verify_invoice_link
from billing_app.services.invoices import InvoiceNotAvailable, render_account_invoice
from billing_app.services.page_sessions import redeem_invoice_link
from billing_app.settings import get_settings
from billing_app.stripe.errors import GatewayError

log = logging.getLogger(__name__)

ACTOR = "invoice-pdf-link"
REFUSED = N_(
    "This invoice link is not valid (it may have expired). Open the invoice again from the Billing "
    "Page."
)
# The PDF holds personal data: no shared or browser caches.
NO_STORE = {"Cache-Control": "private, no-store"}


def _refused(status: int) -> Response:
    return PlainTextResponse(_(REFUSED), status_code=status, headers=NO_STORE)


def invoice_pdf(request: Request) -> Response:
    # In the language of the tab that minted the link (signed with it; on a refused link it only
    # chooses the refusal's language).
    with use_locale(request.query_params.get("locale", DEFAULT_LOCALE)):
        return _invoice_pdf(request)


def _invoice_pdf(request: Request) -> Response:
    # A plain function: Starlette runs it in a worker thread, so the Stripe
    # call and the rendering never block the event loop of the websocket.
    settings = get_settings()
    try:
        link = verify_invoice_link(
            settings, request.path_params["invoice_id"], request.query_params
        )
        with session_scope() as session:
            redeem_invoice_link(session, link)
    except InvalidInvoiceLink as exc:
        log.info("invoice PDF link refused: %s", exc)
        return _refused(403)
    try:
        rendered = render_account_invoice(
            get_gateway(), settings, link.account_id, link.invoice_id, actor=ACTOR
        )
    except InvoiceNotAvailable:
        log.info(
            "invoice PDF refused: account %s has no final invoice %s",
            link.account_id,
            link.invoice_id,
        )
        return _refused(404)
    except GatewayError as exc:
        return PlainTextResponse(exc.message, status_code=503, headers=NO_STORE)
    disposition = "attachment" if request.query_params.get("download") == "1" else "inline"
    return Response(
        rendered.content,
        media_type="application/pdf",
        headers={
            **NO_STORE,
            "Content-Disposition": f'{disposition}; filename="{rendered.filename}"',
        },
    )


routes = [Route(PDF_PATH, invoice_pdf, methods=["GET"])]
