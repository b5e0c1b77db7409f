"""Reduce Licenses and Switch to Monthly at the next renewal, and their undo buttons: thin
wrappers around `BillingService` (the change is scheduled at Stripe, nothing is charged now)."""

from __future__ import annotations

import reflex as rx

from billing_app.i18n import _
from billing_app.services.billing_actions import license_count_error
from billing_app.services.gateway import get_billing_service
from billing_app.states.dialogs import BillingDialogMixin
from billing_app.states.page import DENIED_MESSAGE, require_account

# Radix activates a tab on mousedown; the dialog closes first so nothing traps the event.
_SHOW_USERS_TAB = (
    "setTimeout(() => document.querySelector('[role=tab][id$=\"-trigger-users\"]')"
    "?.dispatchEvent(new MouseEvent('mousedown', {bubbles: true, button: 0})), 0)"
)


class ReduceLicensesState(BillingDialogMixin, rx.State):
    """Reduce Licenses → "Licenses from the next renewal" (not below the licenses in use); each
    opened form is one scheduled change (its idempotency key is the form's id at Stripe)."""

    licenses: str = ""
    # The number the shown refusal was about.
    refused_licenses: str = ""

    @rx.var
    def licenses_error(self) -> str:
        return license_count_error(self.licenses)

    @rx.var
    def refusal_outdated(self) -> bool:
        """The number was edited since the refusal: it no longer applies (hidden, its room kept;
        see set_licenses)."""
        return self.error != "" and self.licenses != self.refused_licenses

    @rx.event
    async def open_form(self):
        if (access := await require_account(self)) is None:
            return rx.toast.error(_(DENIED_MESSAGE))
        self._open_dialog()
        summary = access.page.summary
        purchased = summary.licenses_purchased if summary else 0
        used = summary.licenses_used if summary else 0
        self.licenses = str(max(purchased - 1, used, 1))
        return None

    @rx.event
    def set_licenses(self, value: str):
        # The last refusal keeps its room until the next submit (only hidden once the number
        # changed): the field sends its value when it loses focus, i.e. as the confirming button
        # is pressed, and removing the message above that button moved the button away from under
        # the pointer (the click was lost).
        if not self.pending:
            self.licenses = str(value)[:12]

    @rx.event
    async def submit(self):
        self.refused_licenses = self.licenses  # what a refusal from here on is about
        access = self._start_submit(await require_account(self), self.licenses_error == "")
        if access is None:
            return
        yield
        yield await self._finish(
            access, get_billing_service().reduce_licenses, self.licenses, form=self._key
        )

    @rx.event
    def show_users(self):
        if self.pending:
            return None
        self.open = False
        return rx.call_script(_SHOW_USERS_TAB)


class SwitchMonthlyState(BillingDialogMixin, rx.State):
    """Switch to Monthly at renewal (yearly subscriptions)."""

    @rx.event
    async def open_form(self):
        if await require_account(self) is None:
            return rx.toast.error(_(DENIED_MESSAGE))
        self._open_dialog()
        return None

    @rx.event
    async def submit(self):
        if (access := self._start_submit(await require_account(self), True)) is None:
            return
        yield
        yield await self._finish(access, get_billing_service().switch_to_monthly, form=self._key)


class KeepCurrentState(BillingDialogMixin, rx.State):
    """The undo buttons beside a scheduled change in the summary."""

    @rx.event
    async def keep_licenses(self):
        async for update in self._finish_from_page(get_billing_service().keep_current_licenses):
            yield update

    @rx.event
    async def keep_yearly(self):
        async for update in self._finish_from_page(get_billing_service().keep_yearly_billing):
            yield update
