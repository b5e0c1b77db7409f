"""States of the money dialogs: thin wrappers around `BillingService`.

Every mutating handler first checks that the tab is bound to an account, runs
the service call off the event loop, then refreshes the page and says how it went.
When Stripe asks the customer to confirm a payment (3-D Secure, or the first
payment of a subscription), the dialog runs Stripe.js in the page and then asks
the service to finish the same action (`resume=True`): the service re-reads
Stripe, so what the browser reports is never trusted.

A server reply never resets what the user typed: forms get their defaults when
they open, before any call to Stripe, and later replies only fill in prices,
the card form and errors.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import reflex as rx

from billing_app.models import INTERVAL_MONTH, INTERVAL_YEAR
from billing_app.services.billing_actions import (
    MAX_FEEDBACK_CHARS,
    ActionResult,
    BillingError,
    ChangePreview,
    license_count_error,
    parse_license_count,
)
from billing_app.services.gateway import get_billing_service
from billing_app.services.money import format_money
from billing_app.settings import get_settings
from billing_app.states.dialog import SESSION_EXPIRED, DialogMixin
from billing_app.states.page import PageState

CARD_ELEMENT_ID = "card-element"
MSG_CONFIRMING = "Confirming the payment with your bank…"


def _stripe_js_args() -> str:
    settings = get_settings()
    return f"{json.dumps(settings.stripe_js_url)}, {json.dumps(settings.stripe_publishable)}"


def _confirm_payment_script(result: ActionResult) -> str:
    return (
        f"window.billingCard.confirmPayment({_stripe_js_args()}, "
        f"{json.dumps(result.client_secret)}, {json.dumps(result.payment_method_id)})"
    )


class BillingDialogMixin(DialogMixin, mixin=True):
    """A dialog whose confirming button runs one BillingService action, which may pause for
    the customer to confirm a payment in the page."""

    # True while Stripe.js runs the bank's confirmation for this dialog's action.
    _awaiting_payment: bool = False

    async def _finish(self, call: Callable[..., ActionResult], *args: Any, **kwargs: Any):
        """Run a service action; on success close, refresh the page and toast; else show the
        error."""
        kwargs["actor"] = (await self.get_state(PageState)).actor
        try:
            result = await asyncio.to_thread(call, *args, **kwargs)
        except BillingError as exc:
            self.pending, self.error, self._awaiting_payment = False, str(exc), False
            if exc.stale:
                (await self.get_state(PageState))._refresh()
                return await self._after_stale()
            return None
        if result.awaits_customer:
            self._awaiting_payment, self.error = True, ""
            return rx.call_script(
                _confirm_payment_script(result), callback=type(self).payment_confirmed
            )
        self.pending, self.open, self._awaiting_payment = False, False, False
        (await self.get_state(PageState))._refresh()
        return rx.toast.success(result.message, duration=8000)

    async def _after_stale(self):
        """What the dialog does when its figures were out of date (e.g. preview again)."""

    async def _resume(self, account_id: int):
        """Call the dialog's action again with `resume=True` (after the bank's confirmation)."""
        raise NotImplementedError

    @rx.event
    async def payment_confirmed(self, _browser_result: dict):
        """Stripe.js finished the bank's confirmation: let the service read what Stripe holds."""
        account_id = await self._bound_account()
        if account_id is None:
            self.pending, self._awaiting_payment, self.error = False, False, SESSION_EXPIRED
            return None
        if not (self.pending and self._awaiting_payment):
            return None
        return await self._resume(account_id)


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
        except BillingError as exc:
            self.error = str(exc)
            return False
        return True

    async def _prepare_card(self, account_id: int):
        """Create a SetupIntent and mount the card element; returns the mount script."""
        self.card_ready = False
        if not await self._new_setup_intent(account_id):
            return None
        return rx.call_script(
            f"window.billingCard.mount({_stripe_js_args()}, '#{CARD_ELEMENT_ID}')",
            callback=type(self).card_mounted,
        )

    @rx.event
    async def card_mounted(self, result: dict):
        if await self._bound_account() is None or not self.open:
            return
        self.card_ready = bool(isinstance(result, dict) and result.get("ok"))
        if not self.card_ready:
            self.error = (
                "The card form could not be loaded. Please close this window and try again."
            )

    async def _submit_card(self, ready: bool):
        """Let Stripe.js confirm the SetupIntent with the typed card; `card_confirmed` follows."""
        if await self._start_submit(ready and self.card_ready and self.client_secret != "") is None:
            return None
        return rx.call_script(
            f"window.billingCard.confirm({json.dumps(self.client_secret)}, "
            f"{json.dumps(self.card_name.strip())})",
            callback=type(self).card_confirmed,
        )

    async def _account_with_confirmed_card(self, result: dict) -> int | None:
        """After Stripe.js answered: the bound account if the card was confirmed, else None (error
        shown)."""
        account_id = await self._bound_account()
        if account_id is None:
            self.pending, self.error = False, SESSION_EXPIRED
            return None
        if not self.pending:
            return None
        if not (isinstance(result, dict) and result.get("ok")):
            self.pending = False
            message = result.get("error") if isinstance(result, dict) else None
            self.error = str(message or "The card could not be saved.")[:300]
            return None
        return account_id

    async def _card_action_failed(self, account_id: int) -> None:
        """After a failed attempt the next one needs a new SetupIntent (the typed card stays)."""
        if self.error and not self.pending:
            await self._new_setup_intent(account_id)

    @rx.event
    async def card_confirmed(self, result: dict):
        if (account_id := await self._account_with_confirmed_card(result)) is None:
            return None
        outcome = await self._finish(self._card_action(), account_id, **self._card_action_args())
        await self._card_action_failed(account_id)
        return outcome

    async def _resume(self, account_id: int):
        outcome = await self._finish(
            self._card_action(), account_id, resume=True, **self._card_action_args()
        )
        await self._card_action_failed(account_id)
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
        except BillingError as exc:
            self.error, preview = str(exc), None
        self.previewing = False
        return preview


class LicensePurchaseState(PricePreviewMixin, rx.State):
    """Purchase Additional License → the Purchase Form."""

    count: str = "1"
    agreed: bool = False
    _expected: int = 0
    # The count the price shown is for: a late preview of an older count is not shown.
    _previewed_count: str = ""

    @rx.var
    def count_error(self) -> str:
        return license_count_error(self.count)

    @rx.var
    def can_submit(self) -> bool:
        return (
            self.count_error == ""
            and self.agreed
            and not self.pending
            and not self.previewing
            and self.charged_now != ""
        )

    @rx.event
    async def open_form(self):
        if not await self._open_dialog():
            return rx.toast.error(SESSION_EXPIRED)
        self.count, self.agreed = "1", False
        self._show_preview(None)
        self._expected = int((await self.get_state(PageState)).summary.get("licenses_purchased", 0))
        return LicensePurchaseState.preview

    @rx.event
    def set_count(self, value: str):
        if self.pending:
            return None
        self.count = str(value)[:12]
        self._show_preview(None)
        if self.count_error == "":
            return LicensePurchaseState.preview
        return None

    @rx.event
    def set_agreed(self, value: bool):
        self.agreed = bool(value)

    @rx.event
    async def preview(self):
        account_id = await self._bound_account()
        if account_id is None or self.count_error or not self.open:
            return
        count = self.count
        self.previewing, self.error = True, ""
        yield
        preview = await self._load_preview(
            get_billing_service().preview_additional_licenses, account_id, count
        )
        if self.count == count:  # the user may have typed another number meanwhile
            self._previewed_count = count
            self._show_preview(preview)

    @rx.event
    async def submit(self):
        if self.count != self._previewed_count:
            return
        if (account_id := await self._start_submit(self.can_submit)) is None:
            return
        yield
        yield await self._add(account_id)

    async def _add(self, account_id: int, resume: bool = False):
        return await self._finish(
            get_billing_service().add_licenses,
            account_id,
            self.count,
            expected_licenses=self._expected,
            proration_date=self._proration_date,
            resume=resume,
        )

    async def _resume(self, account_id: int):
        return await self._add(account_id, resume=True)

    async def _after_stale(self):
        self._expected = int((await self.get_state(PageState)).summary.get("licenses_purchased", 0))
        self._show_preview(None)
        return LicensePurchaseState.preview


class UpgradeState(CardFormMixin, rx.State):
    """Purchase Unlimited Version (free accounts): licenses, interval, card, I Agree."""

    licenses: str = "1"
    interval: str = INTERVAL_MONTH
    agreed: bool = False
    # Shown as the hint; the service checks the licenses in use itself.
    minimum: int = 1

    @rx.var
    def licenses_error(self) -> str:
        try:
            parse_license_count(self.licenses, minimum=self.minimum)
        except BillingError as exc:
            return str(exc)
        return ""

    @rx.var
    def total(self) -> str:
        if self.licenses_error:
            return ""
        settings = get_settings()
        unit = (
            settings.billing_price_yearly_cents
            if self.interval == INTERVAL_YEAR
            else settings.billing_price_monthly_cents
        )
        return (
            f"{format_money(int(self.licenses) * unit, settings.billing_currency)} per "
            f"{self.interval}"
        )

    @rx.var
    def can_submit(self) -> bool:
        return self.licenses_error == "" and self.agreed and self.card_ready and not self.pending

    @rx.event
    async def open_form(self):
        if (account_id := await self._open_dialog()) is None:
            yield rx.toast.error(SESSION_EXPIRED)
            return
        used = int((await self.get_state(PageState)).summary.get("licenses_used", 0))
        self.minimum = max(used, 1)
        self.licenses, self.interval, self.agreed, self.card_ready = (
            str(self.minimum),
            INTERVAL_MONTH,
            False,
            False,
        )
        yield  # the form is shown now; what the user types from here on is never reset
        yield await self._prepare_card(account_id)

    @rx.event
    def set_licenses(self, value: str):
        self.licenses = str(value)[:12]

    @rx.event
    def set_interval(self, value: str):
        self.interval = INTERVAL_YEAR if value == INTERVAL_YEAR else INTERVAL_MONTH

    @rx.event
    def set_agreed(self, value: bool):
        self.agreed = bool(value)

    @rx.event
    async def submit(self):
        return await self._submit_card(self.can_submit)

    def _card_action(self) -> Callable[..., ActionResult]:
        return get_billing_service().purchase_unlimited

    def _card_action_args(self) -> dict[str, Any]:
        return {
            "licenses": self.licenses,
            "interval": self.interval,
            "setup_secret": self.client_secret,
        }


class CardState(CardFormMixin, rx.State):
    """Update Credit Card → Change Card → Save Card (also pays the open invoices)."""

    editing: bool = False

    @rx.event
    async def open_form(self):
        if not await self._open_dialog():
            return rx.toast.error(SESSION_EXPIRED)
        self.editing, self.card_ready = False, False

    @rx.event
    async def change_card(self):
        if (account_id := await self._bound_account()) is None:
            yield rx.toast.error(SESSION_EXPIRED)
            return
        if self.editing or not self.open:
            return
        self.editing, self.error, self.card_name = True, "", ""
        yield
        yield await self._prepare_card(account_id)

    @rx.event
    async def submit(self):
        return await self._submit_card(True)

    def _card_action(self) -> Callable[..., ActionResult]:
        return get_billing_service().save_card

    def _card_action_args(self) -> dict[str, Any]:
        return {"setup_secret": self.client_secret}


class YearlyState(PricePreviewMixin, rx.State):
    """Convert to Yearly Billing: the yearly price and what is charged or credited now."""

    @rx.event
    async def open_form(self):
        if (account_id := await self._open_dialog()) is None:
            yield rx.toast.error(SESSION_EXPIRED)
            return
        self._show_preview(None)
        self.previewing = True
        yield
        self._show_preview(
            await self._load_preview(get_billing_service().preview_yearly, account_id)
        )

    @rx.event
    async def submit(self):
        if (account_id := await self._start_submit(self.recurring != "")) is None:
            return
        yield
        yield await self._convert(account_id)

    async def _convert(self, account_id: int, resume: bool = False):
        return await self._finish(
            get_billing_service().convert_to_yearly,
            account_id,
            proration_date=self._proration_date,
            resume=resume,
        )

    async def _resume(self, account_id: int):
        return await self._convert(account_id, resume=True)

    async def _after_stale(self):
        account_id = await self._bound_account()
        if account_id is not None:
            self._show_preview(
                await self._load_preview(get_billing_service().preview_yearly, account_id)
            )


class CancelState(BillingDialogMixin, rx.State):
    """Cancel Subscription: reason (required) and wanted features, saved before Stripe is asked."""

    reason: str = ""
    features: str = ""
    # Each opened form is one cancellation (or one resume click): its key at Stripe.
    _form: str = ""

    @rx.event
    async def open_form(self):
        if not await self._open_dialog():
            return rx.toast.error(SESSION_EXPIRED)
        self.reason = self.features = ""
        self._form = uuid.uuid4().hex

    @rx.event
    def set_reason(self, value: str):
        self.reason = str(value)[: MAX_FEEDBACK_CHARS + 1]

    @rx.event
    def set_features(self, value: str):
        self.features = str(value)[: MAX_FEEDBACK_CHARS + 1]

    @rx.event
    async def submit(self):
        if (account_id := await self._start_submit(True)) is None:
            return
        yield
        yield await self._finish(
            get_billing_service().cancel,
            account_id,
            reason=self.reason,
            additional_features=self.features,
            form=self._form,
        )

    @rx.event
    async def resume(self):
        account_id = await self._bound_account()
        if account_id is None:
            yield rx.toast.error(SESSION_EXPIRED)
            return
        if self.pending:
            return
        self.pending, self.error, self._form = True, "", uuid.uuid4().hex
        yield
        yield await self._finish(get_billing_service().resume, account_id, form=self._form)
        if self.error:  # the resume button sits on the page, not in a dialog
            yield rx.toast.error(self.error)


class PaymentAuthenticationState(rx.State):
    """ "Authenticate Payment": a renewal the bank wants the customer to confirm (3-D Secure)."""

    pending: bool = False

    @rx.event
    async def authenticate(self):
        account_id = (await self.get_state(PageState)).account_id
        if account_id is None:
            yield rx.toast.error(SESSION_EXPIRED)
            return
        if self.pending:
            return
        self.pending = True
        yield
        try:
            secret = await asyncio.to_thread(
                get_billing_service().unpaid_payment_secret, account_id
            )
        except BillingError as exc:
            self.pending = False
            (await self.get_state(PageState))._refresh()
            yield rx.toast.error(str(exc))
            return
        yield rx.call_script(
            f"window.billingCard.confirmPayment({_stripe_js_args()}, {json.dumps(secret)}, null)",
            callback=PaymentAuthenticationState.authenticated,
        )

    @rx.event
    async def authenticated(self, _browser_result: dict):
        page = await self.get_state(PageState)
        account_id = page.account_id
        if account_id is None or not self.pending:
            self.pending = False
            return
        try:
            message = await asyncio.to_thread(
                get_billing_service().after_authentication, account_id, actor=page.actor
            )
        except BillingError as exc:
            self.pending = False
            page._refresh()
            yield rx.toast.error(str(exc))
            return
        self.pending = False
        page._refresh()
        yield rx.toast.success(message, duration=8000)
