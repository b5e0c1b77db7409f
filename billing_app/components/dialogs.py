"""Pieces shared by the money dialogs: the frame, inline errors, the footer, the card form."""

from __future__ import annotations

import reflex as rx

from billing_app.components.text import t
from billing_app.states.dialogs import CARD_ELEMENT_ID


def dialog(
    state, title: str, description: str | rx.Var, *body: rx.Component, modal: bool = True
) -> rx.Component:
    """A dialog that fits the 320–420 px sidebar; `state` is a DialogMixin state.

    Dialogs holding the card form are not modal: a modal dialog makes the rest of the
    page inert, and Stripe's 3-D Secure challenge is added outside the dialog.
    """
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(title, size="4"),
            rx.dialog.description(description, size="2", color_scheme="gray", margin_bottom="12px"),
            rx.vstack(*body, spacing="3", width="100%"),
            width="calc(100vw - 24px)",
            max_width="460px",
            padding=["16px", "20px", "24px"],
        ),
        open=state.open,
        on_open_change=state.set_open,
        modal=modal,
    )


def alert_callout(message: rx.Var, color_scheme: str, **props) -> rx.Component:
    """The message in a callout announced to screen readers, nothing while it is empty."""
    return rx.cond(
        message != "",
        rx.callout(
            message,
            icon="triangle-alert",
            color_scheme=color_scheme,
            width="100%",
            role="alert",
            **props,
        ),
    )


def inline_error(message: rx.Var, **props) -> rx.Component:
    """A refusal inside a dialog or a form: small and red."""
    return alert_callout(message, "red", size="1", **props)


def footer(state, label: str, on_click, disabled: rx.Var | bool = False) -> rx.Component:
    """ "Close" and the confirming button, which spins and is disabled while pending."""
    return rx.hstack(
        rx.button(
            t("Close"),
            variant="soft",
            color_scheme="gray",
            on_click=state.close,
            disabled=state.pending,
            type="button",
        ),
        rx.button(
            label, on_click=on_click, loading=state.pending, disabled=disabled, type="button"
        ),
        justify="end",
        # A long (German) label takes its own line at 360 px instead of pushing "Close" out.
        wrap="wrap",
        spacing="2",
        width="100%",
        padding_top="4px",
    )


def field(
    label: str, control: rx.Component, control_id: str, hint: rx.Component | None = None
) -> rx.Component:
    """A labelled control (the label points at the control's id, for screen readers)."""
    return rx.vstack(
        rx.el.label(label, html_for=control_id, style={"fontSize": "14px", "fontWeight": 500}),
        control,
        hint if hint is not None else rx.fragment(),
        spacing="1",
        width="100%",
    )


def license_count_input(value: rx.Var, on_change, control_id: str) -> rx.Component:
    """A whole number of licenses, 1–1000 (checked again by the service)."""
    return rx.input(
        value=value,
        on_change=on_change,
        debounce_timeout=300,
        type="number",
        min=1,
        max=1000,
        step=1,
        input_mode="numeric",
        id=control_id,
        width="100%",
    )


def card_form(state) -> rx.Component:
    """Stripe.js mounts the card inputs into #card-element; only Stripe sees the card data."""
    return rx.vstack(
        field(
            t("Name on card"),
            rx.input(
                value=state.card_name,
                on_change=state.set_card_name,
                id="card-name",
                placeholder=t("Jane Doe"),
                auto_complete="cc-name",
                width="100%",
            ),
            "card-name",
        ),
        rx.vstack(
            rx.text(t("Card details"), size="2", weight="medium"),
            rx.box(
                id=CARD_ELEMENT_ID,
                padding="10px",
                border=f"1px solid {rx.color('gray', 7)}",
                border_radius="6px",
                width="100%",
                min_height="40px",
                class_name="card-element",
            ),
            rx.text(
                t(
                    "Card number, expiry date (MM/YYYY) and CVC. Card details go straight to "
                    "Stripe, never to us."
                ),
                size="1",
                color_scheme="gray",
            ),
            rx.cond(
                ~state.card_ready & (state.error == ""),
                rx.hstack(
                    rx.spinner(size="1"),
                    rx.text(t("Loading the secure card form…"), size="1", color_scheme="gray"),
                    align="center",
                ),
            ),
            spacing="1",
            width="100%",
        ),
        spacing="3",
        width="100%",
    )


def agreement(state, conditions: rx.Component) -> rx.Component:
    return rx.vstack(
        rx.box(
            conditions,
            padding="10px",
            background=rx.color("gray", 2),
            border_radius="6px",
            width="100%",
        ),
        rx.checkbox(t("I Agree"), checked=state.agreed, on_change=state.set_agreed, id="i-agree"),
        spacing="2",
        width="100%",
    )
