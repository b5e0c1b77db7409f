"""The "Activity" tab's state: the account's audit log, 25 entries at a time."""

from __future__ import annotations

import asyncio

import reflex as rx

from billing_app.db import session_scope
from billing_app.services.activity import ActivityPage, ActivityRow, activity_page
from billing_app.states.page import require_account


def _read(account_id: int, before: int | None) -> ActivityPage:
    with session_scope() as session:
        return activity_page(session, account_id, before=before)


class ActivityState(rx.State):
    """Read each time the tab opens, for the signed-in account only (emptied at sign-out)."""

    entries: list[ActivityRow] = []
    has_more: bool = False
    # True until the first page arrives, so the empty state never flashes.
    loading: bool = True
    loading_more: bool = False

    _cursor: int | None = None

    @rx.event
    async def load(self):
        if (access := await require_account(self)) is None:
            return
        self.loading = True
        yield
        page = await asyncio.to_thread(_read, access.account_id, None)
        self.entries, self.has_more, self._cursor = page.rows, page.has_more, page.next_cursor
        self.loading = False

    @rx.event
    async def load_more(self):
        if (access := await require_account(self)) is None:
            return
        if not self.has_more or self.loading_more or self._cursor is None:
            return
        self.loading_more = True
        yield
        page = await asyncio.to_thread(_read, access.account_id, self._cursor)
        self.entries = self.entries + page.rows
        self.has_more, self._cursor = page.has_more, page.next_cursor
        self.loading_more = False
