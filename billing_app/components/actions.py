"""The buttons that start each flow, the failed-payment banner, and the dialogs they open."""

from __future__ import annotations

import reflex as rx

from billing_app.components.billing_details import billing_details_dialog
from billing_app.components.card import card_dialog
from billing_app.components.plan_changes import cancel_dialog, yearly_dialog
from billing_app.components.purchase import additional_license_dialog, upgrade_dialog
from billing_app.components.renewal_changes import reduce_licenses_dialog, switch_monthly_dialog
from billing_app.components.text import t
from billing_app.states.billing_details import BillingDetailsState
from billing_app.states.card import CardState, PaymentAuthenticationState
from billing_app.states.page import PageState
from billing_app.states.plan_changes import CancelState, YearlyState
from billing_app.states.purchase import LicensePurchaseState, UpgradeState
from billing_app.states.renewal_changes import ReduceLicensesState, SwitchMonthlyState

S = PageState.summary


def payment_failed_banner() -> rx.Component:
    """An unpaid invoice: a declined card (update it), or a payment the bank wants confirmed."""
    return rx.cond(
        S.unpaid_amount != "",
        rx.cond(
            S.unpaid_needs_authentication,
            rx.callout(
                rx.vstack(
                    rx.text(
                        t("Your bank asks you to confirm the payment of "),
                        rx.text.strong(S.unpaid_amount),
                        ".",
                    ),
                    rx.button(
                        t("Authenticate Payment"),
                        on_click=PaymentAuthenticationState.authenticate,
                        loading=PaymentAuthenticationState.pending,
                        size="2",
                    ),
                    spacing="2",
                    align="start",
                ),
                icon="shield-alert",
                color_scheme="amber",
                width="100%",
                role="alert",
                id="payment-needs-authentication",
            ),
            rx.callout(
                rx.text(
                    t("Your last payment of "),
                    rx.text.strong(S.unpaid_amount),
                    t(" failed. Update your credit card to pay the open invoice."),
                ),
                icon="circle-alert",
                color_scheme="red",
                width="100%",
                role="alert",
                id="payment-failed",
            ),
        ),
    )


def _action(label: str, on_click, icon: str, **props) -> rx.Component:
    return rx.button(
        rx.icon(icon, size=16), label, on_click=on_click, width="100%", justify="start", **props
    )


def manage_card() -> rx.Component:
    unlimited = S.is_unlimited
    cancelling = S.cancels_on != ""
    return rx.card(
        rx.vstack(
            rx.heading(t("Manage"), size="3", as_="h2"),
            rx.cond(
                unlimited,
                rx.grid(
                    _action(
                        t("Purchase Additional License"),
                        LicensePurchaseState.open_form,
                        "user-plus",
                    ),
                    _action(
                        t("Update Credit Card"), CardState.open_form, "credit-card", variant="soft"
                    ),
                    rx.cond(
                        S.is_monthly & ~cancelling,
                        _action(
                            t("Convert to Yearly Billing"),
                            YearlyState.open_form,
                            "calendar",
                            variant="soft",
                        ),
                    ),
                    rx.cond(
                        ~cancelling,
                        _action(
                            t("Reduce Licenses"),
                            ReduceLicensesState.open_form,
                            "user-minus",
                            variant="soft",
                        ),
                    ),
                    rx.cond(
                        ~S.is_monthly & ~cancelling & (S.switches_to_monthly == ""),
                        _action(
                            t("Switch to Monthly at Renewal"),
                            SwitchMonthlyState.open_form,
                            "calendar-clock",
                            variant="soft",
                        ),
                    ),
                    rx.cond(
                        cancelling,
                        _action(
                            t("Resume Subscription"),
                            CancelState.resume,
                            "rotate-ccw",
                            variant="soft",
                            color_scheme="grass",
                            loading=CancelState.pending,
                        ),
                        _action(
                            t("Cancel Subscription"),
                            CancelState.open_form,
                            "circle-x",
                            variant="soft",
                            color_scheme="red",
                        ),
                    ),
                    columns=rx.breakpoints(initial="1", sm="2"),
                    spacing="2",
                    width="100%",
                ),
                _action(
                    t("Purchase Unlimited Version"), UpgradeState.open_form, "sparkles", size="3"
                ),
            ),
            _action(
                t("Billing Details"),
                BillingDetailsState.open_form,
                "building-2",
                variant="soft",
                color_scheme="gray",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def billing_dialogs() -> rx.Component:
    return rx.fragment(
        additional_license_dialog(),
        upgrade_dialog(),
        card_dialog(),
        yearly_dialog(),
        cancel_dialog(),
        reduce_licenses_dialog(),
        switch_monthly_dialog(),
        billing_details_dialog(),
    )
