"""The "Billing History" tab's state."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import reflex as rx

from billing_app.errors import UserError
from billing_app.i18n import _
from billing_app.services.gateway import get_gateway
from billing_app.services.invoices import HistoryPage, history_page, pdf_filename
from billing_app.services.summary import InvoiceRow
from billing_app.states.page import DENIED_MESSAGE, SignedIn, require_account

ACTOR = "billing-history"


class HistoryState(rx.State):
    """The account's invoices, read from Stripe each time the tab opens, 25 at a time.

    "Open" and "Download" mint a single-use PDF link for this tab when clicked
    (services/invoice_links.py says why); the new tab is opened within the click's
    user activation, which browsers let open a window.
    """

    invoices: list[InvoiceRow] = []
    has_more: bool = False
    # True until the first page arrives, so the empty state never flashes.
    loading: bool = True
    loading_more: bool = False
    error: str = ""

    _cursor: str | None = None

    async def _fetch(self, account_id: int, starting_after: str | None) -> HistoryPage | None:
        try:
            # The Stripe call blocks: keep it off the event loop.
            return await asyncio.to_thread(
                history_page,
                get_gateway(),
                account_id,
                actor=ACTOR,
                starting_after=starting_after,
            )
        except UserError as exc:
            self.error = exc.message
            return None

    @rx.event
    async def load(self):
        if (access := await require_account(self)) is None:
            return
        self.loading, self.error = True, ""
        yield
        page = await self._fetch(access.account_id, None) or HistoryPage([], False, None)
        self.invoices, self.has_more, self._cursor = page.rows, page.has_more, page.next_cursor
        self.loading = False

    @rx.event
    async def load_more(self):
        if (access := await require_account(self)) is None:
            return
        if not self.has_more or self.loading_more:
            return
        self.loading_more, self.error = True, ""
        yield
        page = await self._fetch(access.account_id, self._cursor)
        if page is not None:
            self.invoices = self.invoices + page.rows
            self.has_more, self._cursor = page.has_more, page.next_cursor
        self.loading_more = False

    def _pdf_url(self, access: SignedIn | None, invoice_id: str, *, download: bool) -> str | None:
        if access is None or invoice_id not in {row.id for row in self.invoices}:
            return None
        return access.page._invoice_pdf_url(invoice_id, download=download)

    @rx.event
    async def open_invoice(self, invoice_id: str):
        url = self._pdf_url(await require_account(self), invoice_id, download=False)
        if url is None:
            return rx.toast.error(_(DENIED_MESSAGE))
        return rx.call_script(f"window.open({json.dumps(url)}, '_blank', 'noopener')")

    @rx.event
    async def download_invoice(self, invoice_id: str, number: str):
        url = self._pdf_url(await require_account(self), invoice_id, download=True)
        if url is None:
            return rx.toast.error(_(DENIED_MESSAGE))
        parts = urlsplit(url)  # rx.download takes a path: the page and the API share one origin
        return rx.download(url=f"{parts.path}?{parts.query}", filename=pdf_filename(number))
