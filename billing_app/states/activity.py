"""The "Activity" tab's state: the account's audit log, 25 entries at a time."""

from __future__ import annotations

import asyncio

import reflex as rx

from billing_app.db import session_scope
from billing_app.services.activity import ActivityPage, activity_page
from billing_app.states.page import PageState


def _read(account_id: int, before: int | None) -> ActivityPage:
    with session_scope() as session:
        return activity_page(session, account_id, before=before)


class ActivityState(rx.State):
    """Read each time the tab opens, for the signed-in account only (emptied at sign-out)."""

    entries: list[dict[str, str]] = []
    has_more: bool = False
    # True until the first page arrives, so the empty state never flashes.
    loading: bool = True
    loading_more: bool = False

    _cursor: int | None = None

    async def _fetch(self, before: int | None) -> ActivityPage | None:
        account_id = (await self.get_state(PageState)).account_id
        if account_id is None:
            return None
        return await asyncio.to_thread(_read, account_id, before)

    @rx.event
    async def load(self):
        self.loading = True
        yield
        page = await self._fetch(None) or ActivityPage([], False, None)
        self.entries, self.has_more, self._cursor = page.rows, page.has_more, page.next_cursor
        self.loading = False

    @rx.event
    async def load_more(self):
        if not self.has_more or self.loading_more or self._cursor is None:
            return
        self.loading_more = True
        yield
        page = await self._fetch(self._cursor)
        if page is not None:
            self.entries = self.entries + page.rows
            self.has_more, self._cursor = page.has_more, page.next_cursor
        self.loading_more = False
