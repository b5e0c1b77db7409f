"""The Billing Details dialog: company, address, invoice email and tax ID, saved at Stripe."""

from __future__ import annotations

import asyncio

import reflex as rx

from billing_app.errors import UserError
from billing_app.i18n import _
from billing_app.services.billing_details import MAX_CHARS, tax_id_rules
from billing_app.services.countries import COUNTRY_NAMES
from billing_app.services.gateway import get_billing_service
from billing_app.states.dialogs import DialogMixin
from billing_app.states.page import DENIED_MESSAGE, require_account

# Typing stops one past each limit, so that the form says what the limit is.
_MAX_EMAIL_CHARS = 255
_MAX_TAX_ID_CHARS = 41


class BillingDetailsState(DialogMixin, rx.State):
    name: str = ""
    email: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    postal_code: str = ""
    region: str = ""
    country: str = ""
    tax_id_type: str = ""
    tax_id_value: str = ""
    # The tax ID types of the chosen country: [type, "label (e.g. example)"].
    tax_id_options: list[list[str]] = []
    tax_id_example: str = ""

    @rx.event
    async def open_form(self):
        if (access := await require_account(self)) is None:
            return rx.toast.error(_(DENIED_MESSAGE))
        self._open_dialog()
        try:
            saved = await asyncio.to_thread(
                get_billing_service().billing_details_form, access.account_id
            )
        except UserError as exc:
            self.error = exc.message
            return None
        self.name, self.email = saved.name, saved.email
        self.line1, self.line2, self.city = saved.line1, saved.line2, saved.city
        self.postal_code, self.region, self.country = saved.postal_code, saved.state, saved.country
        self.tax_id_type, self.tax_id_value = saved.tax_id_type, saved.tax_id_value
        self._show_tax_id_types()
        return None

    def _show_tax_id_types(self) -> None:
        rules = tax_id_rules(self.country)
        self.tax_id_options = [[rule.type, rule.label] for rule in rules]
        if self.tax_id_type not in {rule.type for rule in rules}:
            # A typed number stays, checked against the new country's first type.
            self.tax_id_type = rules[0].type if rules and self.tax_id_value.strip() else ""
        chosen = next((rule for rule in rules if rule.type == self.tax_id_type), None)
        self.tax_id_example = chosen.example if chosen else ""

    @rx.event
    def set_name(self, value: str):
        self.name = str(value)[: MAX_CHARS["name"] + 1]

    @rx.event
    def set_email(self, value: str):
        self.email = str(value)[:_MAX_EMAIL_CHARS]

    @rx.event
    def set_line1(self, value: str):
        self.line1 = str(value)[: MAX_CHARS["line1"] + 1]

    @rx.event
    def set_line2(self, value: str):
        self.line2 = str(value)[: MAX_CHARS["line2"] + 1]

    @rx.event
    def set_city(self, value: str):
        self.city = str(value)[: MAX_CHARS["city"] + 1]

    @rx.event
    def set_postal_code(self, value: str):
        self.postal_code = str(value)[: MAX_CHARS["postal_code"] + 1]

    @rx.event
    def set_region(self, value: str):
        self.region = str(value)[: MAX_CHARS["state"] + 1]

    @rx.event
    def set_country(self, value: str):
        self.country = value if value in COUNTRY_NAMES else ""
        self._show_tax_id_types()

    @rx.event
    def set_tax_id_type(self, value: str):
        self.tax_id_type = str(value)[:16]
        if not self.tax_id_type:  # "No tax ID"
            self.tax_id_value = ""
        self._show_tax_id_types()

    @rx.event
    def set_tax_id_value(self, value: str):
        self.tax_id_value = str(value)[:_MAX_TAX_ID_CHARS]

    @rx.event
    async def submit(self):
        if (access := self._start_submit(await require_account(self), True)) is None:
            return
        yield
        page = access.page
        form = {
            "name": self.name,
            "email": self.email,
            "line1": self.line1,
            "line2": self.line2,
            "city": self.city,
            "postal_code": self.postal_code,
            "state": self.region,
            "country": self.country,
            "tax_id_type": self.tax_id_type,
            "tax_id_value": self.tax_id_value,
        }
        try:
            result = await asyncio.to_thread(
                get_billing_service().save_billing_details,
                access.account_id,
                form,
                form_id=self._key,
                actor=page.actor,
            )
        except UserError as exc:
            self.pending, self.error = False, exc.message
            return
        self.pending, self.open = False, False
        page._refresh()
        yield rx.toast.success(result.message, duration=8000)
