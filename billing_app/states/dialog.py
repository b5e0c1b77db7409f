"""What every dialog of the page has: open and pending flags, an inline error, an idempotency
key."""

from __future__ import annotations

import uuid

import reflex as rx

from billing_app.i18n import N_, _
from billing_app.states.page import PageState

SESSION_EXPIRED = N_(
    "Your session has ended. Open the Billing Page again from the $ icon in the connector."
)


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class DialogMixin(rx.State, mixin=True):
    """Open and pending flags, an inline error and an idempotency key, checked against the bound
    account."""

    open: bool = False
    pending: bool = False
    error: str = ""
    _key: str = ""

    async def _bound_account(self) -> int | None:
        return (await self.get_state(PageState)).account_id

    async def _open_dialog(self) -> int | None:
        """Open the dialog with a fresh idempotency key; the bound account, or None (nothing
        opened)."""
        account_id = await self._bound_account()
        if account_id is not None:
            self.open, self.pending, self.error, self._key = True, False, "", new_idempotency_key()
        return account_id

    @rx.event
    def close(self):
        self.open = False
        self.pending = False

    @rx.event
    def set_open(self, value: bool):
        # Radix closes the dialog on Escape/outside click; never while money is moving.
        if not value and not self.pending:
            self.open = False

    async def _start_submit(self, ready: bool) -> int | None:
        """The bound account if the form may be submitted now (then marked pending), else None."""
        account_id = await self._bound_account()
        if account_id is None:
            self.error = _(SESSION_EXPIRED)
            return None
        if not (self.open and ready) or self.pending:  # e.g. the second click of a double click
            return None
        self.pending, self.error = True, ""
        return account_id
