"""Change Password (shown to a signed-in tab of a password-protected account).

Passwords travel only in the submitted form, never in state vars (which would be
sent back to the browser).
"""

from __future__ import annotations

import asyncio

import reflex as rx

from billing_app.db import session_scope
from billing_app.errors import UserError
from billing_app.i18n import _
from billing_app.models import Account
from billing_app.services.passwords import change_password
from billing_app.states.dialogs import DialogMixin
from billing_app.states.page import DENIED_MESSAGE, require_account


class ChangePasswordState(DialogMixin, rx.State):
    @rx.event
    async def open_form(self):
        if await require_account(self) is None:
            return rx.toast.error(_(DENIED_MESSAGE))
        self._open_dialog()

    @rx.event
    async def submit(self, form: dict):
        if (access := self._start_submit(await require_account(self), True)) is None:
            return
        yield
        page = access.page
        try:
            epoch = await asyncio.to_thread(
                _change,
                access.account_id,
                str(form.get("current_password", "")),
                str(form.get("new_password", "")),
                str(form.get("confirm_password", "")),
                page.actor,
            )
        except UserError as exc:
            self.pending, self.error = False, exc.message
            return
        page._note_password_changed(epoch)
        self.pending, self.open = False, False
        yield rx.toast.success(
            _("Password changed. Other signed-in sessions of this page were signed out.")
        )


def _change(account_id: int, current: str, new: str, confirmation: str, actor: str) -> int:
    with session_scope() as session:
        account = session.get(Account, account_id)
        change_password(session, account, current[:512], new[:512], confirmation[:512], actor=actor)
        return account.session_epoch
