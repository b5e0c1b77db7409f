"""The password prompt (before anything of the account is shown) and Change Password."""

from __future__ import annotations

import reflex as rx

from billing_app.components.dialogs import dialog, field, inline_error
from billing_app.components.text import t
from billing_app.services.passwords import MIN_LENGTH
from billing_app.states.access import ChangePasswordState
from billing_app.states.page import PageState


def password_prompt() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.icon("lock-keyhole", size=28, color=rx.color("gray", 10)),
                rx.heading(t("Sign in to the Billing Page"), size="4", as_="h1"),
                rx.text(
                    t("This Billing Page is protected by a password."),
                    size="2",
                    color_scheme="gray",
                ),
                field(
                    t("Password"),
                    rx.input(
                        name="password",
                        id="page-password",
                        type="password",
                        required=True,
                        auto_complete="current-password",
                        auto_focus=True,
                        width="100%",
                    ),
                    "page-password",
                ),
                inline_error(PageState.password_error),
                rx.button(t("Sign In"), type="submit", loading=PageState.signing_in, width="100%"),
                spacing="3",
                width="100%",
            ),
            on_submit=PageState.submit_password,
            reset_on_submit=True,
        ),
        width="100%",
        max_width="400px",
        margin_x="auto",
    )


def _password_input(label: str, name: str, autocomplete: str) -> rx.Component:
    return field(
        label,
        rx.input(
            name=name,
            id=name,
            type="password",
            required=True,
            auto_complete=autocomplete,
            width="100%",
        ),
        name,
    )


def change_password_dialog() -> rx.Component:
    s = ChangePasswordState
    return dialog(
        s,
        t("Change Password"),
        t(
            "At least %(count)s characters, not the account name or admin email. "
            "Other signed-in sessions of this page are signed out.",
            count=str(MIN_LENGTH),
        ),
        rx.form(
            rx.vstack(
                _password_input(t("Current password"), "current_password", "current-password"),
                _password_input(t("New password"), "new_password", "new-password"),
                _password_input(t("Confirm new password"), "confirm_password", "new-password"),
                inline_error(s.error),
                rx.hstack(
                    rx.button(
                        t("Close"),
                        variant="soft",
                        color_scheme="gray",
                        on_click=s.close,
                        type="button",
                        disabled=s.pending,
                    ),
                    rx.button(t("Change Password"), type="submit", loading=s.pending),
                    justify="end",
                    spacing="2",
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=s.submit,
        ),
    )


def security_card() -> rx.Component:
    return rx.cond(
        PageState.summary.has_password,
        rx.card(
            rx.hstack(
                rx.vstack(
                    rx.heading(t("Page password"), size="3", as_="h2"),
                    rx.text(
                        t("This page asks for a password when opened."),
                        size="1",
                        color_scheme="gray",
                    ),
                    spacing="1",
                ),
                rx.spacer(),
                rx.hstack(
                    rx.button(
                        t("Change Password"), variant="soft", on_click=ChangePasswordState.open_form
                    ),
                    rx.button(
                        t("Sign Out"),
                        variant="soft",
                        color_scheme="gray",
                        on_click=PageState.sign_out,
                    ),
                    spacing="2",
                ),
                align="center",
                width="100%",
                wrap="wrap",
                spacing="2",
            ),
            width="100%",
        ),
    )
