"""The Billing Details dialog (Plan tab): who the invoices are made out to."""

from __future__ import annotations

import reflex as rx

from billing_app.components.dialogs import dialog, field, footer, inline_error
from billing_app.components.text import localized_component, t
from billing_app.services.countries import countries
from billing_app.states.billing_details import BillingDetailsState

# Native selects: a list of 249 countries is typed through and scrolled best by the browser's own.
_SELECT_STYLE = {
    "width": "100%",
    "height": "32px",
    "padding": "0 8px",
    "borderRadius": "4px",
    "border": f"1px solid {rx.color('gray', 7)}",
    "background": rx.color("gray", 1),
    "color": rx.color("gray", 12),
    "fontSize": "14px",
}


def _input(label: str | rx.Var, control_id: str, value: rx.Var, on_change, **props) -> rx.Component:
    return field(
        label,
        rx.input(value=value, on_change=on_change, id=control_id, width="100%", **props),
        control_id,
    )


def _country() -> rx.Component:
    s = BillingDetailsState
    return field(
        t("Country"),
        rx.el.select(
            rx.el.option(t("Choose a country"), value=""),
            localized_component(
                lambda locale: rx.fragment(
                    *[rx.el.option(name, value=code) for code, name in countries(locale)]
                )
            ),
            value=s.country,
            on_change=s.set_country,
            id="billing-country",
            required=True,
            auto_complete="country",
            style=_SELECT_STYLE,
        ),
        "billing-country",
    )


def _tax_id() -> rx.Component:
    s = BillingDetailsState
    return rx.vstack(
        field(
            t("Tax ID type"),
            rx.el.select(
                rx.el.option(t("No tax ID"), value=""),
                rx.foreach(
                    s.tax_id_options, lambda option: rx.el.option(option[1], value=option[0])
                ),
                value=s.tax_id_type,
                on_change=s.set_tax_id_type,
                id="billing-tax-id-type",
                style=_SELECT_STYLE,
            ),
            "billing-tax-id-type",
        ),
        rx.cond(
            s.tax_id_type != "",
            field(
                t("Tax ID"),
                rx.input(
                    value=s.tax_id_value,
                    on_change=s.set_tax_id_value,
                    id="billing-tax-id",
                    placeholder=s.tax_id_example,
                    width="100%",
                ),
                "billing-tax-id",
                rx.text(
                    t("For example %(example)s", example=s.tax_id_example),
                    size="1",
                    color_scheme="gray",
                ),
            ),
            rx.cond(
                (s.country != "") & (s.tax_id_options.length() == 0),
                rx.text(
                    t("Stripe has no tax ID type for this country."), size="1", color_scheme="gray"
                ),
            ),
        ),
        spacing="3",
        width="100%",
    )


def billing_details_dialog() -> rx.Component:
    s = BillingDetailsState
    return dialog(
        s,
        t("Billing Details"),
        t("Printed on your invoices from now on; invoices already issued stay as they are."),
        _input(t("Company name"), "billing-name", s.name, s.set_name, auto_complete="organization"),
        _input(t("Address"), "billing-line1", s.line1, s.set_line1, auto_complete="address-line1"),
        _input(
            t("Address line 2 (optional)"),
            "billing-line2",
            s.line2,
            s.set_line2,
            auto_complete="address-line2",
        ),
        rx.grid(
            _input(
                t("Postal code"),
                "billing-postal-code",
                s.postal_code,
                s.set_postal_code,
                auto_complete="postal-code",
            ),
            _input(t("City"), "billing-city", s.city, s.set_city, auto_complete="address-level2"),
            columns=rx.breakpoints(initial="1", xs="2"),
            spacing="3",
            width="100%",
        ),
        _input(
            t("State or region (optional)"),
            "billing-region",
            s.region,
            s.set_region,
            auto_complete="address-level1",
        ),
        _country(),
        _input(
            t("Invoice email"),
            "billing-email",
            s.email,
            s.set_email,
            type="email",
            auto_complete="email",
        ),
        _tax_id(),
        inline_error(s.error),
        footer(s, t("Save"), s.submit),
    )
