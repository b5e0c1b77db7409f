"""The "Billing History" tab's state."""

from __future__ import annotations

import asyncio

import reflex as rx

from billing_app.services.gateway import get_gateway
from billing_app.services.invoices import HistoryPage, history_page
from billing_app.settings import get_settings
from billing_app.states.page import PageState
from billing_app.stripe_gateway import GatewayError

ACTOR = "billing-history"


class HistoryState(rx.State):
    """The account's invoices, read from Stripe each time the tab opens, 25 at a time.

    Each row carries its PDF links, signed when the page is loaded: "Open" is a
    plain link, so no popup blocker stands between the click and the new tab.
    """

    invoices: list[dict[str, str]] = []
    has_more: bool = False
    # True until the first page arrives, so the empty state never flashes.
    loading: bool = True
    loading_more: bool = False
    error: str = ""

    _cursor: str | None = None

    async def _fetch(self, starting_after: str | None) -> HistoryPage | None:
        page_state = await self.get_state(PageState)
        account_id = page_state.account_id
        if account_id is None:
            return None
        try:
            # The Stripe call blocks: keep it off the event loop.
            return await asyncio.to_thread(
                history_page, get_gateway(), get_settings(), account_id,
                actor=ACTOR, starting_after=starting_after,
            )
        except GatewayError as exc:
            self.error = exc.user_message
            return None

    @rx.event
    async def load(self):
        self.loading, self.error = True, ""
        yield
        page = await self._fetch(None) or HistoryPage([], False, None)
        self.invoices, self.has_more, self._cursor = page.rows, page.has_more, page.next_cursor
        self.loading = False

    @rx.event
    async def load_more(self):
        if not self.has_more or self.loading_more:
            return
        self.loading_more, self.error = True, ""
        yield
        page = await self._fetch(self._cursor)
        if page is not None:
            self.invoices = self.invoices + page.rows
            self.has_more, self._cursor = page.has_more, page.next_cursor
        self.loading_more = False
