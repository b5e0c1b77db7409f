"""Buying licenses: Purchase Additional License (the Purchase Form) and Purchase Unlimited
Version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx

from billing_app.i18n import _
from billing_app.plans import Interval
from billing_app.services.billing_actions import (
    ActionResult,
    license_count_error,
    recurring_amount,
)
from billing_app.services.gateway import get_billing_service
from billing_app.settings import get_settings
from billing_app.states.dialogs import CardFormMixin, PricePreviewMixin
from billing_app.states.page import DENIED_MESSAGE, SignedIn, require_account


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

    def _expect_shown_licenses(self, access: SignedIn) -> None:
        """The purchase is made against the licenses the page shows (stale if Stripe has more)."""
        summary = access.page.summary
        self._expected = summary.licenses_purchased if summary else 0

    @rx.event
    async def open_form(self):
        if (access := await require_account(self)) is None:
            return rx.toast.error(_(DENIED_MESSAGE))
        self._open_dialog()
        self.count, self.agreed = "1", False
        self._show_preview(None)
        self._expect_shown_licenses(access)
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
        access = await require_account(self)
        if access is None or self.count_error or not self.open:
            return
        count = self.count
        self.previewing, self.error = True, ""
        yield
        preview = await self._load_preview(
            get_billing_service().preview_additional_licenses, access.account_id, count
        )
        if self.count == count:  # the user may have typed another number meanwhile
            self._previewed_count = count
            self._show_preview(preview)

    @rx.event
    async def submit(self):
        access = await require_account(self)
        if self.count != self._previewed_count:
            return
        if (access := self._start_submit(access, self.can_submit)) is None:
            return
        yield
        yield await self._act(access)

    async def _act(self, access: SignedIn, *, resume: bool = False):
        return await self._finish(
            access,
            get_billing_service().add_licenses,
            self.count,
            expected_licenses=self._expected,
            proration_date=self._proration_date,
            resume=resume,
        )

    async def _after_stale(self, access: SignedIn):
        self._expect_shown_licenses(access)
        self._show_preview(None)
        return LicensePurchaseState.preview


class UpgradeState(CardFormMixin, rx.State):
    """Purchase Unlimited Version (free accounts): licenses, interval, card, I Agree."""

    licenses: str = "1"
    interval: str = Interval.MONTH
    agreed: bool = False
    # Shown as the hint; the service checks the licenses in use itself.
    minimum: int = 1

    @rx.var
    def licenses_error(self) -> str:
        return license_count_error(self.licenses, minimum=self.minimum)

    @rx.var
    def total(self) -> str:
        if self.licenses_error:
            return ""
        settings = get_settings()
        unit = (
            settings.billing_price_yearly_cents
            if self.interval == Interval.YEAR
            else settings.billing_price_monthly_cents
        )
        return recurring_amount(int(self.licenses) * unit, settings.billing_currency, self.interval)

    @rx.var
    def can_submit(self) -> bool:
        return self.licenses_error == "" and self.agreed and self.card_ready and not self.pending

    @rx.event
    async def open_form(self):
        if (access := await require_account(self)) is None:
            yield rx.toast.error(_(DENIED_MESSAGE))
            return
        self._open_dialog()
        summary = access.page.summary
        self.minimum = max(summary.licenses_used if summary else 0, 1)
        self.licenses, self.interval, self.agreed, self.card_ready = (
            str(self.minimum),
            Interval.MONTH,
            False,
            False,
        )
        yield  # the form is shown now; what the user types from here on is never reset
        yield await self._prepare_card(access.account_id)

    @rx.event
    def set_licenses(self, value: str):
        self.licenses = str(value)[:12]

    @rx.event
    def set_interval(self, value: str):
        self.interval = Interval.YEAR if value == Interval.YEAR else Interval.MONTH

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
