"""Purchase Unlimited Version (free accounts) and Purchase Additional License (the Purchase
Form)."""

from __future__ import annotations

import reflex as rx

from billing_app.components.dialogs import (
    agreement,
    card_form,
    dialog,
    field,
    footer,
    inline_error,
    license_count_input,
)
from billing_app.components.text import t
from billing_app.plans import Interval
from billing_app.services.money import format_money
from billing_app.settings import get_settings
from billing_app.states.purchase import LicensePurchaseState, UpgradeState


def monthly_price(locale: str) -> str:
    """One license of the Unlimited Version per month (settings), formatted for `locale`."""
    s = get_settings()
    return format_money(s.billing_price_monthly_cents, s.billing_currency, locale)


def yearly_price(locale: str) -> str:
    """One license of the Unlimited Version per year (settings), formatted for `locale`."""
    s = get_settings()
    return format_money(s.billing_price_yearly_cents, s.billing_currency, locale)


def _amount_line(label: str, value: rx.Var, strong: bool = True) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray"),
        rx.spacer(),
        rx.text(value, size="2", weight="bold" if strong else "regular"),
        width="100%",
    )


def additional_license_dialog() -> rx.Component:
    s = LicensePurchaseState
    conditions = rx.text(
        t(
            "Each license lets one more user of your allowed domains use the Unlimited Version. "
            "The amount below is charged to your card on file today, prorated for the rest of the "
            "current billing period; from the next invoice on, the new recurring amount applies "
            "until you cancel. Charges are not refunded when users are removed."
        ),
        size="1",
    )
    return dialog(
        s,
        t("Purchase Form"),
        t("Add licenses to your Unlimited Version subscription."),
        field(
            t("How many extra licenses?"),
            license_count_input(s.count, s.set_count, "extra-licenses"),
            "extra-licenses",
            rx.cond(
                s.count_error != "",
                rx.text(s.count_error, size="1", color_scheme="red"),
                rx.text(t("A whole number from 1 to 1000."), size="1", color_scheme="gray"),
            ),
        ),
        rx.card(
            rx.cond(
                s.previewing,
                rx.hstack(
                    rx.spinner(size="1"),
                    rx.text(t("Asking Stripe for the price…"), size="2"),
                    align="center",
                ),
                rx.vstack(
                    _amount_line(
                        rx.cond(s.is_credit, t("Credited today"), t("Charged today (prorated)")),
                        rx.cond(s.charged_now != "", s.charged_now, "—"),
                    ),
                    _amount_line(
                        t("New recurring amount"),
                        rx.cond(s.recurring != "", s.recurring, "—"),
                        strong=False,
                    ),
                    spacing="1",
                    width="100%",
                ),
            ),
            width="100%",
            size="1",
            id="license-preview",
        ),
        agreement(s, conditions),
        inline_error(s.error),
        footer(s, t("Add License"), s.submit, disabled=~s.can_submit),
    )


def _interval_option(value: str, label: str) -> rx.Component:
    return rx.el.label(
        rx.hstack(
            rx.radio_group.item(value=value), rx.text(label, size="2"), align="center", spacing="2"
        ),
    )


def upgrade_dialog() -> rx.Component:
    s = UpgradeState
    conditions = rx.text(
        t(
            "Your card is charged the total below today and again at the start of each billing "
            "period until you cancel. You can add licenses, switch to yearly billing or cancel at "
            "any time from this page."
        ),
        size="1",
    )
    return dialog(
        s,
        t("Purchase Unlimited Version"),
        t("Licenses for every user of your allowed email domains."),
        field(
            t("Number of licenses"),
            rx.input(
                value=s.licenses,
                on_change=s.set_licenses,
                type="number",
                min=1,
                max=1000,
                step=1,
                input_mode="numeric",
                id="upgrade-licenses",
                width="100%",
            ),
            "upgrade-licenses",
            rx.cond(
                s.licenses_error != "", rx.text(s.licenses_error, size="1", color_scheme="red")
            ),
        ),
        rx.vstack(
            rx.text(t("Billing"), size="2", weight="medium"),
            rx.radio_group.root(
                rx.vstack(
                    _interval_option(
                        Interval.MONTH,
                        t("Monthly — %(price)s per license per month", price=monthly_price),
                    ),
                    _interval_option(
                        Interval.YEAR,
                        t("Yearly — %(price)s per license per year", price=yearly_price),
                    ),
                    spacing="2",
                ),
                value=s.interval,
                on_change=s.set_interval,
                aria_label=t("Billing"),
            ),
            spacing="1",
            width="100%",
        ),
        _amount_line(t("Total"), rx.cond(s.total != "", s.total, "—")),
        card_form(s),
        agreement(s, conditions),
        inline_error(s.error),
        footer(s, t("Subscribe"), s.submit, disabled=~s.can_submit),
        modal=False,
    )
