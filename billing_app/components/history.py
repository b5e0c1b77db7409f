"""The "Billing History" tab: the account's invoices, newest first, each with Open and Download."""

from __future__ import annotations

import reflex as rx

from billing_app.components.lists import load_more_button, paged_tab
from billing_app.components.text import t
from billing_app.states.history import HistoryState

_STATUS_COLORS = {"paid": "grass", "open": "amber", "void": "gray"}


def _status(invoice: rx.Var) -> rx.Component:
    # Coloured by Stripe's status, labelled in the tab's language.
    return rx.badge(
        invoice.status,
        color_scheme=rx.match(invoice.state, *_STATUS_COLORS.items(), "gray"),
        variant="soft",
    )


def _pdf_button(label: str, icon: str, on_click: rx.EventSpec, variant: str) -> rx.Component:
    # Buttons, not links: the single-use PDF link is minted on click (states/history.py).
    return rx.button(
        rx.icon(icon, size=14, aria_hidden="true"),
        label,
        on_click=on_click,
        size="1",
        variant=variant,
    )


def _actions(invoice: rx.Var) -> rx.Component:
    return rx.hstack(
        _pdf_button(t("Open"), "external-link", HistoryState.open_invoice(invoice.id), "soft"),
        _pdf_button(
            t("Download"),
            "download",
            HistoryState.download_invoice(invoice.id, invoice.number),
            "ghost",
        ),
        spacing="3",
        align="center",
    )


def _invoice(invoice: rx.Var) -> rx.Component:
    return rx.flex(
        rx.hstack(
            rx.vstack(
                rx.text(invoice.date, size="2", weight="medium"),
                rx.text(invoice.number, size="1", color_scheme="gray", font_family="monospace"),
                rx.text(invoice.period, size="1", color_scheme="gray"),
                spacing="0",
                min_width="0",
            ),
            rx.spacer(),
            rx.vstack(
                rx.text(invoice.amount, size="2", weight="medium", white_space="nowrap"),
                _status(invoice),
                align="end",
                spacing="1",
            ),
            width="100%",
            align="center",
        ),
        rx.box(
            _actions(invoice),
            align_self=rx.breakpoints(initial="flex-end", xs="center"),
            flex_shrink="0",
        ),
        # Sidebar: the actions go below the invoice; wider: beside it.
        direction=rx.breakpoints(initial="column", xs="row"),
        row_gap="8px",
        column_gap="20px",
        padding_y="10px",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        width="100%",
        class_name="invoice-row",
        aria_label=invoice.number,
        role="listitem",
    )


def _empty() -> rx.Component:
    return rx.vstack(
        rx.icon("receipt", size=28, color=rx.color("gray", 9)),
        rx.text(t("No invoices yet"), size="2", weight="medium"),
        rx.text(
            t("Your invoices appear here after the first payment."),
            size="1",
            color_scheme="gray",
            align="center",
        ),
        align="center",
        spacing="1",
        padding_y="24px",
        width="100%",
    )


def _error() -> rx.Component:
    return rx.callout.root(
        rx.callout.icon(rx.icon("triangle-alert")),
        rx.callout.text(HistoryState.error),
        rx.cond(
            HistoryState.invoices.length() == 0,
            rx.button(
                t("Try again"),
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=HistoryState.load,
            ),
        ),
        color_scheme="red",
        size="1",
        width="100%",
        role="alert",
    )


def _list() -> rx.Component:
    return rx.fragment(
        rx.cond(
            HistoryState.invoices.length() > 0,
            rx.box(
                rx.foreach(HistoryState.invoices, _invoice),
                role="list",
                aria_label=t("Invoices"),
                width="100%",
            ),
            rx.cond(HistoryState.error == "", _empty()),
        ),
        rx.cond(HistoryState.error != "", _error()),
        load_more_button(HistoryState.has_more, HistoryState.load_more, HistoryState.loading_more),
    )


def history_tab() -> rx.Component:
    return paged_tab(
        rx.heading(t("Invoices"), size="3", as_="h2"),
        loading=HistoryState.loading,
        loading_label=t("Loading invoices"),
        body=_list(),
        on_mount=HistoryState.load,
    )
