"""The "Billing History" tab: the account's invoices, newest first."""

from __future__ import annotations

import reflex as rx

from billing_app.states.history import HistoryState

_STATUS_COLORS = {"Paid": "grass", "Open": "amber", "Void": "gray"}


def _status(status: rx.Var) -> rx.Component:
    return rx.badge(status, color_scheme=rx.match(status, *_STATUS_COLORS.items(), "gray"), variant="soft")


def _invoice(invoice: rx.Var) -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.vstack(
                rx.text(invoice["date"], size="2", weight="medium"),
                rx.text(invoice["number"], size="1", color_scheme="gray", font_family="monospace"),
                rx.text(invoice["period"], size="1", color_scheme="gray"),
                spacing="0",
                min_width="0",
            ),
            rx.spacer(),
            rx.vstack(
                rx.text(invoice["amount"], size="2", weight="medium"),
                _status(invoice["status"]),
                align="end",
                spacing="1",
            ),
            width="100%",
            align="center",
        ),
        padding_y="10px",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        width="100%",
        class_name="invoice-row",
    )


def history_tab() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Invoices", size="3", as_="h2"),
            rx.cond(
                HistoryState.loading,
                rx.center(rx.spinner(), padding_y="24px", width="100%", aria_label="Loading invoices"),
                rx.cond(
                    HistoryState.error != "",
                    rx.callout(HistoryState.error, icon="triangle-alert", color_scheme="red", size="1", width="100%"),
                    rx.cond(
                        HistoryState.invoices.length() > 0,
                        rx.foreach(HistoryState.invoices, _invoice),
                        rx.text("No invoices yet.", size="2", color_scheme="gray"),
                    ),
                ),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )
