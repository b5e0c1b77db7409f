"""Paying with a card: Update Credit Card (also pays the open invoices), and Authenticate Payment
for a renewal the bank wants the customer to confirm."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import reflex as rx

from billing_app.errors import UserError
from billing_app.i18n import _
from billing_app.services.billing_actions import ActionResult
from billing_app.services.gateway import get_billing_service
from billing_app.states.dialogs import CardFormMixin, stripe_js_args
from billing_app.states.page import DENIED_MESSAGE, require_account


class CardState(CardFormMixin, rx.State):
    """Update Credit Card → Change Card → Save Card (also pays the open invoices)."""

    editing: bool = False

    @rx.event
    async def open_form(self):
        if await require_account(self) is None:
            return rx.toast.error(_(DENIED_MESSAGE))
        self._open_dialog()
        self.editing, self.card_ready = False, False

    @rx.event
    async def change_card(self):
        if (access := await require_account(self)) is None:
            yield rx.toast.error(_(DENIED_MESSAGE))
            return
        if self.editing or not self.open:
            return
        self.editing, self.error, self.card_name = True, "", ""
        yield
        yield await self._prepare_card(access.account_id)

    @rx.event
    async def submit(self):
        return await self._submit_card(True)

    def _card_action(self) -> Callable[..., ActionResult]:
        return get_billing_service().save_card

    def _card_action_args(self) -> dict[str, Any]:
        return {"setup_secret": self.client_secret}


class PaymentAuthenticationState(rx.State):
    """ "Authenticate Payment": a renewal the bank wants the customer to confirm (3-D Secure)."""

    pending: bool = False

    @rx.event
    async def authenticate(self):
        if (access := await require_account(self)) is None:
            yield rx.toast.error(_(DENIED_MESSAGE))
            return
        if self.pending:
            return
        self.pending = True
        yield
        try:
            secret = await asyncio.to_thread(
                get_billing_service().unpaid_payment_secret, access.account_id
            )
        except UserError as exc:
            self.pending = False
            access.page._refresh()
            yield rx.toast.error(exc.message)
            return
        yield rx.call_script(
            f"window.billingCard.confirmPayment({stripe_js_args()}, {json.dumps(secret)}, null)",
            callback=PaymentAuthenticationState.authenticated,
        )

    @rx.event
    async def authenticated(self, _browser_result: dict):
        access = await require_account(self)
        if access is None or not self.pending:
            self.pending = False
            return
        try:
            message = await asyncio.to_thread(
                get_billing_service().after_authentication,
                access.account_id,
                actor=access.page.actor,
            )
        except UserError as exc:
            self.pending = False
            access.page._refresh()
            yield rx.toast.error(exc.message)
            return
        self.pending = False
        access.page._refresh()
        yield rx.toast.success(message, duration=8000)
