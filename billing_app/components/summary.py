"""The summary card: plan, billing interval, licenses, next invoice, card."""

from __future__ import annotations

import reflex as rx

from billing_app.components.dialogs import alert_callout
from billing_app.components.text import t
from billing_app.states.page import PageState
from billing_app.states.renewal_changes import KeepCurrentState

S = PageState.summary


def _row(label: str, value: rx.Component) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray", min_width="110px"),
        rx.box(value, text_align="right", flex="1", min_width="0"),
        justify="between",
        align="center",
        width="100%",
        padding_y="10px",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        _last_child={"border_bottom": "none"},
    )


def _licenses() -> rx.Component:
    used, purchased = S.licenses_used, S.licenses_purchased
    return rx.vstack(
        rx.text(
            rx.text.strong(used),
            t(" of "),
            rx.text.strong(purchased),
            t(" licenses used"),
            size="2",
            id="licenses-summary",
        ),
        rx.progress(
            # More users than licenses shows a full bar (past max, Radix would draw none).
            value=rx.cond(
                purchased > 0,
                rx.cond(used >= purchased, 100, (used * 100 / purchased).to(int)),
                0,
            ),
            max=100,
            size="1",
            width="140px",
            aria_label=t("Licenses used"),
        ),
        align="end",
        spacing="1",
    )


def _next_invoice() -> rx.Component:
    return rx.cond(
        S.cancels_on != "",
        rx.badge(t("Cancels on "), S.cancels_on, color_scheme="amber"),
        rx.cond(
            S.next_invoice_amount != "",
            rx.text(
                rx.text.strong(S.next_invoice_amount),
                t(" on "),
                S.next_invoice_date,
                size="2",
            ),
            rx.text("—", size="2", color_scheme="gray"),
        ),
    )


def _scheduled(text: rx.Var, undo_label: str, on_click, element_id: str) -> rx.Component:
    """A change scheduled for the renewal, with the button that undoes it."""
    return rx.cond(
        text != "",
        rx.hstack(
            rx.text(text, size="2", id=element_id),
            rx.button(
                undo_label,
                on_click=on_click,
                loading=KeepCurrentState.pending,
                size="1",
                variant="soft",
            ),
            justify="between",
            align="center",
            wrap="wrap",
            spacing="2",
            width="100%",
            padding_y="10px",
            border_bottom=f"1px solid {rx.color('gray', 4)}",
        ),
    )


def _card() -> rx.Component:
    return rx.cond(
        S.card_label != "",
        rx.vstack(
            rx.hstack(
                rx.icon("credit-card", size=16),
                rx.text(S.card_label, size="2"),
                spacing="2",
                align="center",
            ),
            rx.text(t("Expires "), S.card_expiry, size="1", color_scheme="gray"),
            align="end",
            spacing="0",
        ),
        rx.text(t("No card on file"), size="2", color_scheme="gray"),
    )


def over_licensed_banner() -> rx.Component:
    """More users than licenses: nobody new can be activated until the admin resolves it."""
    return alert_callout(S.over_licensed_notice, "amber", id="over-licensed-banner")


def summary_card() -> rx.Component:
    unlimited = S.is_unlimited
    return rx.card(
        rx.vstack(
            rx.heading(t("Subscription"), size="3", as_="h2"),
            _row(t("Plan"), rx.text(S.plan_label, size="2", weight="medium")),
            rx.cond(unlimited, _row(t("Billing"), rx.text(S.interval_label, size="2"))),
            _row(t("Licenses"), _licenses()),
            rx.cond(unlimited, _row(t("Next invoice"), _next_invoice())),
            _scheduled(
                S.renews_with,
                t("Keep current licenses"),
                KeepCurrentState.keep_licenses,
                "scheduled-licenses",
            ),
            _scheduled(
                S.switches_to_monthly,
                t("Keep yearly billing"),
                KeepCurrentState.keep_yearly,
                "scheduled-monthly",
            ),
            _row(t("Card"), _card()),
            _row(
                t("Billing details"),
                rx.cond(
                    S.billing_details != "",
                    rx.text(S.billing_details, size="2", id="billing-details-summary"),
                    rx.text(
                        t("Not set"), size="2", color_scheme="gray", id="billing-details-summary"
                    ),
                ),
            ),
            rx.cond(
                ~unlimited,
                rx.callout(
                    t("You are on the free version of the connector."),
                    icon="info",
                    size="1",
                    color_scheme="gray",
                    width="100%",
                ),
            ),
            spacing="0",
            width="100%",
        ),
        width="100%",
        size="2",
        id="summary-card",
    )
