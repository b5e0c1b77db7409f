"""The "User Management" tab: activated add-on users and the allowed email domains."""

from __future__ import annotations

import reflex as rx

from billing_app.states.page import PageState


def _user(user: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.text(user["email"], size="2", trim="both", min_width="0", overflow_wrap="anywhere"),
        rx.spacer(),
        rx.text(user["activated"], size="1", color_scheme="gray", white_space="nowrap"),
        width="100%",
        align="center",
        padding_y="8px",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        class_name="user-row",
    )


def users_section() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Activated Add-on users", size="3", as_="h2"),
            rx.cond(
                PageState.users.length() > 0,
                rx.foreach(PageState.users, _user),
                rx.text("No user has activated a license yet.", size="2", color_scheme="gray"),
            ),
            spacing="1",
            width="100%",
        ),
        width="100%",
    )


def domains_section() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Email Domain allowed to use licenses", size="3", as_="h2"),
            rx.flex(
                rx.foreach(PageState.domains, lambda domain: rx.badge(domain, variant="surface", size="2")),
                gap="2",
                wrap="wrap",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def users_tab() -> rx.Component:
    return rx.vstack(users_section(), domains_section(), spacing="4", width="100%")
