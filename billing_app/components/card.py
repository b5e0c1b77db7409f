"""Update Credit Card: the current card, "Change Card", then the card form and "Save Card"."""

from __future__ import annotations

import reflex as rx

from billing_app.components.dialogs import card_form, dialog, footer, inline_error
from billing_app.components.text import t
from billing_app.states.card import CardState
from billing_app.states.page import PageState

S = PageState.summary


def _current_card() -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.icon("credit-card", size=20),
            rx.vstack(
                rx.text(
                    rx.cond(S.card_label != "", S.card_label, t("No card on file")),
                    size="2",
                    weight="medium",
                ),
                rx.cond(
                    S.card_expiry != "",
                    rx.text(t("Expires "), S.card_expiry, size="1", color_scheme="gray"),
                ),
                spacing="0",
            ),
            rx.spacer(),
            rx.link(
                t("Change Card"),
                on_click=CardState.change_card,
                href="#",
                size="2",
                id="change-card",
            ),
            align="center",
            width="100%",
        ),
        width="100%",
        size="1",
    )


def card_dialog() -> rx.Component:
    s = CardState
    return dialog(
        s,
        t("Update Credit Card"),
        t("The card used for your invoices."),
        _current_card(),
        rx.cond(
            S.unpaid_amount != "",
            rx.text(
                t("Saving a new card also pays the open invoice of "),
                S.unpaid_amount,
                ".",
                size="2",
            ),
        ),
        rx.cond(
            s.editing,
            rx.vstack(
                card_form(s),
                inline_error(s.error),
                footer(s, t("Save Card"), s.submit, disabled=~s.card_ready),
                spacing="3",
                width="100%",
            ),
            rx.vstack(
                inline_error(s.error),
                rx.hstack(
                    rx.button(
                        t("Close"),
                        variant="soft",
                        color_scheme="gray",
                        on_click=s.close,
                        type="button",
                    ),
                    justify="end",
                    width="100%",
                ),
                width="100%",
            ),
        ),
        modal=False,
    )
