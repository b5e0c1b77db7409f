"""Changing the plan: Convert to Yearly Billing, Cancel Subscription and Resume Subscription."""

from __future__ import annotations

import uuid

import reflex as rx

from billing_app.i18n import _
from billing_app.services.billing_actions import MAX_FEEDBACK_CHARS
from billing_app.services.gateway import get_billing_service
from billing_app.states.dialogs import BillingDialogMixin, PricePreviewMixin
from billing_app.states.page import DENIED_MESSAGE, SignedIn, require_account


class YearlyState(PricePreviewMixin, rx.State):
    """Convert to Yearly Billing: the yearly price and what is charged or credited now."""

    @rx.event
    async def open_form(self):
        if (access := await require_account(self)) is None:
            yield rx.toast.error(_(DENIED_MESSAGE))
            return
        self._open_dialog()
        self._show_preview(None)
        self.previewing = True
        yield
        await self._preview(access)

    async def _preview(self, access: SignedIn) -> None:
        self._show_preview(
            await self._load_preview(get_billing_service().preview_yearly, access.account_id)
        )

    @rx.event
    async def submit(self):
        if (
            access := self._start_submit(await require_account(self), self.recurring != "")
        ) is None:
            return
        yield
        yield await self._act(access)

    async def _act(self, access: SignedIn, *, resume: bool = False):
        return await self._finish(
            access,
            get_billing_service().convert_to_yearly,
            proration_date=self._proration_date,
            resume=resume,
        )

    async def _after_stale(self, access: SignedIn):
        await self._preview(access)


class CancelState(BillingDialogMixin, rx.State):
    """Cancel Subscription: reason (required) and wanted features, saved before Stripe is asked."""

    reason: str = ""
    features: str = ""
    # Each opened form is one cancellation: its key at Stripe.
    _form: str = ""

    @rx.event
    async def open_form(self):
        if await require_account(self) is None:
            return rx.toast.error(_(DENIED_MESSAGE))
        self._open_dialog()
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
        if (access := self._start_submit(await require_account(self), True)) is None:
            return
        yield
        yield await self._finish(
            access,
            get_billing_service().cancel,
            reason=self.reason,
            additional_features=self.features,
            form=self._form,
        )

    @rx.event
    async def resume(self):
        async for update in self._finish_from_page(get_billing_service().resume):
            yield update
