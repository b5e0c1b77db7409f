"""States of the money dialogs: thin wrappers around `BillingService`.

Every mutating handler first checks that the tab is bound to an account, runs
the service call off the event loop, then refreshes the page and says how it went.
Each form gets a fresh idempotency key when it opens, so a double click or a
retry of the same form can never charge twice.
"""

from __future__ import annotations

import asyncio
import json

import reflex as rx

from billing_app.models import INTERVAL_MONTH, INTERVAL_YEAR
from billing_app.services.billing_actions import (
    MAX_FEEDBACK_CHARS,
    MSG_STALE_PAGE,
    ActionResult,
    BillingError,
    parse_license_count,
)
from billing_app.services.gateway import get_billing_service
from billing_app.services.money import format_money
from billing_app.settings import get_settings
from billing_app.states.dialog import SESSION_EXPIRED, DialogMixin, new_idempotency_key
from billing_app.states.page import PageState

CARD_ELEMENT_ID = "card-element"


class BillingDialogMixin(DialogMixin, mixin=True):
    """A dialog whose confirming button runs one BillingService action."""

    async def _finish(self, call, *args, **kwargs):
        """Run a service action; on success close, refresh the page and toast; else show the error."""
        kwargs["actor"] = (await self.get_state(PageState)).actor
        try:
            result: ActionResult = await asyncio.to_thread(call, *args, **kwargs)
        except BillingError as exc:
            self.pending, self.error = False, str(exc)
            if str(exc) != MSG_STALE_PAGE:
                return None
            (await self.get_state(PageState)).refresh()
            self._key = new_idempotency_key()
            return None
        self.pending, self.open = False, False
        (await self.get_state(PageState)).refresh()
        return rx.toast.success(result.message, duration=8000)


class CardFormMixin(BillingDialogMixin, mixin=True):
    """The Stripe.js card form inside a dialog (SetupIntent → confirmCardSetup in the browser)."""

    card_name: str = ""
    card_ready: bool = False
    # The SetupIntent's client secret is meant for the browser: Stripe.js confirms with it.
    client_secret: str = ""

    @rx.event
    def set_card_name(self, value: str):
        self.card_name = value[:100]

    async def _prepare_card(self, account_id: int):
        """Create a SetupIntent and mount the card element; returns the mount script."""
        self.card_ready, self.card_name, self.client_secret = False, "", ""
        try:
            self.client_secret = await asyncio.to_thread(
                get_billing_service().start_card_setup, account_id, key=new_idempotency_key())
        except BillingError as exc:
            self.error = str(exc)
            return None
        settings = get_settings()
        return rx.call_script(
            f"window.billingCard.mount({json.dumps(settings.stripe_js_url)}, "
            f"{json.dumps(settings.stripe_publishable)}, '#{CARD_ELEMENT_ID}')",
            callback=type(self).card_mounted,
        )

    @rx.event
    def card_mounted(self, result: dict):
        self.card_ready = bool(result and result.get("ok"))
        if not self.card_ready:
            self.error = (result or {}).get("error") or "The card form could not be loaded."

    async def _submit_card(self, ready: bool):
        """Let Stripe.js confirm the SetupIntent with the typed card; `card_confirmed` follows."""
        if await self._start_submit(ready and self.card_ready) is None:
            return None
        return rx.call_script(
            f"window.billingCard.confirm({json.dumps(self.client_secret)}, {json.dumps(self.card_name.strip())})",
            callback=type(self).card_confirmed,
        )

    async def _account_with_confirmed_card(self, result: dict) -> int | None:
        """After Stripe.js answered: the bound account if the card was confirmed, else None (error shown)."""
        account_id = await self._bound_account()
        if account_id is None or not (result and result.get("ok")):
            self.pending = False
            self.error = SESSION_EXPIRED if account_id is None else (
                (result or {}).get("error") or "The card could not be saved.")
            return None
        return account_id


class PricePreviewMixin(BillingDialogMixin, mixin=True):
    """What a change costs, from Stripe's invoice preview, shown before confirming."""

    charged_now: str = ""
    is_credit: bool = False
    recurring: str = ""
    previewing: bool = False

    async def _load_preview(self, preview_call, *args) -> None:
        self.charged_now = self.recurring = ""
        try:
            preview = await asyncio.to_thread(preview_call, *args)
            self.charged_now, self.is_credit, self.recurring = preview.charged_now, preview.is_credit, preview.recurring
        except BillingError as exc:
            self.error = str(exc)
        self.previewing = False


class LicensePurchaseState(PricePreviewMixin, rx.State):
    """Purchase Additional License → the Purchase Form."""

    count: str = "1"
    agreed: bool = False
    _expected: int = 0

    @rx.var
    def count_error(self) -> str:
        try:
            parse_license_count(self.count)
        except BillingError as exc:
            return str(exc)
        return ""

    @rx.var
    def can_submit(self) -> bool:
        return self.count_error == "" and self.agreed and not self.pending and not self.previewing \
            and self.charged_now != ""

    @rx.event
    async def open_form(self):
        if not await self._open_dialog():
            return rx.toast.error(SESSION_EXPIRED)
        self.count, self.agreed = "1", False
        self._expected = (await self.get_state(PageState)).summary.get("licenses_purchased", 0)
        return LicensePurchaseState.preview

    @rx.event
    def set_count(self, value: str):
        self.count = value[:12]
        self.charged_now = self.recurring = ""
        if self.count_error == "":
            return LicensePurchaseState.preview

    @rx.event
    def set_agreed(self, value: bool):
        self.agreed = bool(value)

    @rx.event
    async def preview(self):
        account_id = await self._bound_account()
        if account_id is None or self.count_error:
            return
        self.previewing, self.error = True, ""
        yield
        await self._load_preview(get_billing_service().preview_additional_licenses, account_id, self.count)

    @rx.event
    async def submit(self):
        if (account_id := await self._start_submit(self.can_submit)) is None:
            return
        yield
        yield await self._finish(get_billing_service().add_licenses, account_id, self.count,
                                 expected_licenses=self._expected, key=self._key)
        self._expected = (await self.get_state(PageState)).summary.get("licenses_purchased", 0)


class UpgradeState(CardFormMixin, rx.State):
    """Purchase Unlimited Version (free accounts): licenses, interval, card, I Agree."""

    licenses: str = "1"
    interval: str = INTERVAL_MONTH
    agreed: bool = False
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
        unit = settings.billing_price_yearly_cents if self.interval == INTERVAL_YEAR else settings.billing_price_monthly_cents
        return f"{format_money(int(self.licenses) * unit, settings.billing_currency)} per {self.interval}"

    @rx.var
    def can_submit(self) -> bool:
        return self.licenses_error == "" and self.agreed and self.card_ready and not self.pending

    @rx.event
    async def open_form(self):
        if (account_id := await self._open_dialog()) is None:
            return rx.toast.error(SESSION_EXPIRED)
        used = (await self.get_state(PageState)).summary.get("licenses_used", 0)
        self.minimum = max(int(used), 1)
        self.licenses, self.interval, self.agreed = str(self.minimum), INTERVAL_MONTH, False
        return await self._prepare_card(account_id)

    @rx.event
    def set_licenses(self, value: str):
        self.licenses = value[:12]

    @rx.event
    def set_interval(self, value: str):
        self.interval = INTERVAL_YEAR if value == INTERVAL_YEAR else INTERVAL_MONTH

    @rx.event
    def set_agreed(self, value: bool):
        self.agreed = bool(value)

    @rx.event
    async def submit(self):
        return await self._submit_card(self.can_submit)

    @rx.event
    async def card_confirmed(self, result: dict):
        if (account_id := await self._account_with_confirmed_card(result)) is None:
            return None
        return await self._finish(
            get_billing_service().purchase_unlimited, account_id, licenses=self.licenses, interval=self.interval,
            setup_secret=self.client_secret, key=self._key)


class CardState(CardFormMixin, rx.State):
    """Update Credit Card → Change Card → Save Card (also pays an unpaid invoice)."""

    editing: bool = False

    @rx.event
    async def open_form(self):
        if not await self._open_dialog():
            return rx.toast.error(SESSION_EXPIRED)
        self.editing, self.card_ready = False, False

    @rx.event
    async def change_card(self):
        if (account_id := await self._bound_account()) is None:
            return rx.toast.error(SESSION_EXPIRED)
        self.editing, self.error = True, ""
        return await self._prepare_card(account_id)

    @rx.event
    async def submit(self):
        return await self._submit_card(True)

    @rx.event
    async def card_confirmed(self, result: dict):
        if (account_id := await self._account_with_confirmed_card(result)) is None:
            return None
        return await self._finish(get_billing_service().save_card, account_id, self.client_secret, key=self._key)


class YearlyState(PricePreviewMixin, rx.State):
    """Convert to Yearly Billing: the yearly price and what is charged or credited now."""

    @rx.event
    async def open_form(self):
        if (account_id := await self._open_dialog()) is None:
            yield rx.toast.error(SESSION_EXPIRED)
            return
        self.previewing = True
        yield
        await self._load_preview(get_billing_service().preview_yearly, account_id)

    @rx.event
    async def submit(self):
        if (account_id := await self._start_submit(self.recurring != "")) is None:
            return
        yield
        yield await self._finish(get_billing_service().convert_to_yearly, account_id, key=self._key)


class CancelState(BillingDialogMixin, rx.State):
    """Cancel Subscription: reason (required) and wanted features, saved before Stripe is asked."""

    reason: str = ""
    features: str = ""

    @rx.event
    async def open_form(self):
        if not await self._open_dialog():
            return rx.toast.error(SESSION_EXPIRED)
        self.reason = self.features = ""

    @rx.event
    def set_reason(self, value: str):
        self.reason = value[: MAX_FEEDBACK_CHARS + 1]

    @rx.event
    def set_features(self, value: str):
        self.features = value[: MAX_FEEDBACK_CHARS + 1]

    @rx.event
    async def submit(self):
        if (account_id := await self._start_submit(True)) is None:
            return
        yield
        yield await self._finish(get_billing_service().cancel, account_id, reason=self.reason,
                                 additional_features=self.features, key=self._key)

    @rx.event
    async def resume(self):
        account_id = await self._bound_account()
        if account_id is None:
            yield rx.toast.error(SESSION_EXPIRED)
            return
        if self.pending:
            return
        self.pending, self.error, self._key = True, "", new_idempotency_key()
        yield
        yield await self._finish(get_billing_service().resume, account_id, key=self._key)
        if self.error:  # the resume button sits on the page, not in a dialog
            yield rx.toast.error(self.error)
