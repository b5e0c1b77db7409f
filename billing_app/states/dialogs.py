"""What the page's dialogs share: open and pending flags, an inline error, an idempotency key;
for the money dialogs, one BillingService action that may pause for the bank's confirmation, the
price preview, and the Stripe.js card form.

Every handler that touches the account starts with `require_account` (states/page.py), runs the
service call off the event loop, then refreshes the page and says how it went. When Stripe asks
the customer to confirm a payment (3-D Secure, or the first payment of a subscription), the
dialog runs Stripe.js in the page and then asks the service to finish the same action
(`resume=True`): the service re-reads Stripe, so what the browser reports is never trusted.

A server reply never resets what the user typed: forms get their defaults when they open, before
any call to Stripe, and later replies only fill in prices, the card form and errors.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import reflex as rx

from billing_app.errors import UserError
from billing_app.i18n import _
from billing_app.services.billing_actions import ActionResult, ChangePreview, StalePage
from billing_app.services.gateway import get_billing_service
from billing_app.settings import get_settings
from billing_app.states.page import DENIED_MESSAGE, SignedIn, require_account

CARD_ELEMENT_ID = "card-element"


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def stripe_js_args() -> str:
    settings = get_settings()
    return f"{json.dumps(settings.stripe_js_url)}, {json.dumps(settings.stripe_publishable)}"


def _confirm_payment_script(result: ActionResult) -> str:
    return (
        f"window.billingCard.confirmPayment({stripe_js_args()}, "
        f"{json.dumps(result.client_secret)}, {json.dumps(result.payment_method_id)})"
    )


class DialogMixin(rx.State, mixin=True):
    """Open and pending flags, an inline error and an idempotency key."""

    open: bool = False
    pending: bool = False
    error: str = ""
    _key: str = ""

    def _open_dialog(self) -> None:
        """Open the dialog with a fresh idempotency key (the caller checked the sign-in)."""
        self.open, self.pending, self.error, self._key = True, False, "", new_idempotency_key()

    @rx.event
    def close(self):
        self.open = False
        self.pending = False

    @rx.event
    def set_open(self, value: bool):
        # Radix closes the dialog on Escape/outside click; never while money is moving.
        if not value and not self.pending:
            self.open = False

    def _start_submit(self, access: SignedIn | None, ready: bool) -> SignedIn | None:
        """The sign-in if the form may be submitted now (then marked pending), else None; an ended
        sign-in is said in the dialog."""
        if access is None:
            self.error = _(DENIED_MESSAGE)
            return None
        if not (self.open and ready) or self.pending:  # e.g. the second click of a double click
            return None
        self.pending, self.error = True, ""
        return access


class BillingDialogMixin(DialogMixin, mixin=True):
    """A dialog whose confirming button runs one BillingService action, which may pause for
    the customer to confirm a payment in the page."""

    # True while Stripe.js runs the bank's confirmation for this dialog's action.
    _awaiting_payment: bool = False

    async def _finish(
        self, access: SignedIn, call: Callable[..., ActionResult], *args: Any, **kwargs: Any
    ):
        """Run a service action for the account; on success close, refresh the page and toast;
        else show the error."""
        try:
            result = await asyncio.to_thread(
                call, access.account_id, *args, actor=access.page.actor, **kwargs
            )
        except UserError as exc:
            self.pending, self.error, self._awaiting_payment = False, exc.message, False
            if isinstance(exc, StalePage):
                access.page._refresh()
                return await self._after_stale(access)
            return None
        if result.awaits_customer:
            self._awaiting_payment, self.error = True, ""
            return rx.call_script(
                _confirm_payment_script(result), callback=type(self).payment_confirmed
            )
        self.pending, self.open, self._awaiting_payment = False, False, False
        access.page._refresh()
        return rx.toast.success(result.message, duration=8000)

    async def _after_stale(self, access: SignedIn):
        """What the dialog does when its figures were out of date (e.g. preview again)."""

    async def _finish_from_page(self, call: Callable[..., ActionResult], **kwargs: Any):
        """`_finish` for a button on the page itself (no dialog to show the error in: a toast),
        each click its own action."""
        if (access := await require_account(self)) is None:
            yield rx.toast.error(_(DENIED_MESSAGE))
            return
        if self.pending:
            return
        self.pending, self.error = True, ""
        yield
        yield await self._finish(access, call, form=new_idempotency_key(), **kwargs)
        if self.error:
            yield rx.toast.error(self.error)

    async def _act(self, access: SignedIn, *, resume: bool = False):
        """Run the dialog's action through `_finish`; again with `resume=True` after the bank's
        confirmation."""
        raise NotImplementedError

    @rx.event
    async def payment_confirmed(self, _browser_result: dict):
        """Stripe.js finished the bank's confirmation: let the service read what Stripe holds."""
        if (access := await require_account(self)) is None:
            self.pending, self._awaiting_payment, self.error = False, False, _(DENIED_MESSAGE)
            return None
        if not (self.pending and self._awaiting_payment):
            return None
        return await self._act(access, resume=True)


class CardFormMixin(BillingDialogMixin, mixin=True):
    """The Stripe.js card form inside a dialog (SetupIntent → confirmCardSetup in the browser)."""

    card_name: str = ""
    card_ready: bool = False
    # The SetupIntent's client secret is meant for the browser: Stripe.js confirms with it.
    client_secret: str = ""

    @rx.event
    def set_card_name(self, value: str):
        self.card_name = str(value)[:100]

    async def _new_setup_intent(self, account_id: int) -> bool:
        """A fresh SetupIntent (one that succeeded cannot be confirmed again, so every attempt
        gets its own); False with the error shown when Stripe could not make one."""
        self.client_secret = ""
        try:
            self.client_secret = await asyncio.to_thread(
                get_billing_service().start_card_setup, account_id
            )
        except UserError as exc:
            self.error = exc.message
            return False
        return True

    async def _prepare_card(self, account_id: int):
        """Create a SetupIntent and mount the card element; returns the mount script."""
        self.card_ready = False
        if not await self._new_setup_intent(account_id):
            return None
        return rx.call_script(
            f"window.billingCard.mount({stripe_js_args()}, '#{CARD_ELEMENT_ID}')",
            callback=type(self).card_mounted,
        )

    @rx.event
    async def card_mounted(self, result: dict):
        if await require_account(self) is None or not self.open:
            return
        self.card_ready = bool(isinstance(result, dict) and result.get("ok"))
        if not self.card_ready:
            self.error = _(
                "The card form could not be loaded. Please close this window and try again."
            )

    async def _submit_card(self, ready: bool):
        """Let Stripe.js confirm the SetupIntent with the typed card; `card_confirmed` follows."""
        access = await require_account(self)
        if (
            self._start_submit(access, ready and self.card_ready and self.client_secret != "")
            is None
        ):
            return None
        return rx.call_script(
            f"window.billingCard.confirm({json.dumps(self.client_secret)}, "
            f"{json.dumps(self.card_name.strip())})",
            callback=type(self).card_confirmed,
        )

    def _confirmed_card(self, access: SignedIn | None, result: dict) -> SignedIn | None:
        """After Stripe.js answered: the sign-in if the card was confirmed, else None (error
        shown)."""
        if access is None:
            self.pending, self.error = False, _(DENIED_MESSAGE)
            return None
        if not self.pending:
            return None
        if not (isinstance(result, dict) and result.get("ok")):
            self.pending = False
            message = result.get("error") if isinstance(result, dict) else None
            # billing_card.js's own messages are in the catalogue; Stripe's come translated.
            self.error = _(str(message or "The card could not be saved."))[:300]
            return None
        return access

    @rx.event
    async def card_confirmed(self, result: dict):
        if (access := self._confirmed_card(await require_account(self), result)) is None:
            return None
        return await self._act(access)

    async def _act(self, access: SignedIn, *, resume: bool = False):
        outcome = await self._finish(
            access, self._card_action(), resume=resume, **self._card_action_args()
        )
        if self.error and not self.pending:
            # After a failed attempt the next one needs a new SetupIntent (the typed card stays).
            await self._new_setup_intent(access.account_id)
        return outcome

    def _card_action(self) -> Callable[..., ActionResult]:
        raise NotImplementedError

    def _card_action_args(self) -> dict[str, Any]:
        raise NotImplementedError


class PricePreviewMixin(BillingDialogMixin, mixin=True):
    """What a change costs, from Stripe's invoice preview, shown before confirming."""

    charged_now: str = ""
    is_credit: bool = False
    recurring: str = ""
    previewing: bool = False
    # The instant Stripe prorated from: the change is made with the same one (charge == preview).
    _proration_date: int = 0

    def _show_preview(self, preview: ChangePreview | None) -> None:
        self.charged_now = preview.charged_now if preview else ""
        self.is_credit = preview.is_credit if preview else False
        self.recurring = preview.recurring if preview else ""
        self._proration_date = preview.proration_date if preview else 0

    async def _load_preview(
        self, preview_call: Callable[..., ChangePreview], *args: Any
    ) -> ChangePreview | None:
        try:
            preview = await asyncio.to_thread(preview_call, *args)
        except UserError as exc:
            self.error, preview = exc.message, None
        self.previewing = False
        return preview
