"""Convert to Yearly Billing and Cancel Subscription."""

from __future__ import annotations

import reflex as rx

from billing_app.components.dialogs import dialog, field, footer, inline_error
from billing_app.components.text import t
from billing_app.states.plan_changes import CancelState, YearlyState


def yearly_dialog() -> rx.Component:
    s = YearlyState
    return dialog(
        s,
        t("Convert to Yearly Billing"),
        t("Pay once a year instead of every month."),
        rx.cond(
            s.previewing,
            rx.hstack(
                rx.spinner(size="1"),
                rx.text(t("Asking Stripe for the price…"), size="2"),
                align="center",
            ),
            rx.card(
                rx.vstack(
                    rx.hstack(
                        rx.text(t("Yearly price"), size="2", color_scheme="gray"),
                        rx.spacer(),
                        rx.text(s.recurring, size="2", weight="bold"),
                        width="100%",
                    ),
                    rx.hstack(
                        rx.text(
                            rx.cond(s.is_credit, t("Credited now"), t("Charged now")),
                            size="2",
                            color_scheme="gray",
                        ),
                        rx.spacer(),
                        rx.text(s.charged_now, size="2", weight="bold"),
                        width="100%",
                    ),
                    rx.text(
                        t(
                            "The unused part of this month is credited. "
                            "Your next invoice is in a year."
                        ),
                        size="1",
                        color_scheme="gray",
                    ),
                    spacing="2",
                    width="100%",
                ),
                width="100%",
                size="1",
                id="yearly-preview",
            ),
        ),
        inline_error(s.error),
        footer(s, t("Switch to Yearly"), s.submit, disabled=s.previewing | (s.recurring == "")),
    )


def cancel_dialog() -> rx.Component:
    s = CancelState
    return dialog(
        s,
        t("Cancel Subscription"),
        t("Your licenses stay active until the end of the current billing period."),
        field(
            t("Reason for Cancelling"),
            rx.text_area(
                value=s.reason,
                on_change=s.set_reason,
                id="cancel-reason",
                required=True,
                placeholder=t("Required"),
                rows="3",
                width="100%",
            ),
            "cancel-reason",
        ),
        field(
            t("Additional Features"),
            rx.text_area(
                value=s.features,
                on_change=s.set_features,
                id="cancel-features",
                placeholder=t("What would have made you stay? (optional)"),
                rows="3",
                width="100%",
            ),
            "cancel-features",
        ),
        inline_error(s.error),
        footer(s, t("Proceed with Cancellation"), s.submit, disabled=s.reason.strip() == ""),
    )
