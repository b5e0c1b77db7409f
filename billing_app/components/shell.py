"""The frame of the page: header, badges, and the screens shown instead of account data."""

from __future__ import annotations

import reflex as rx

from billing_app.components.text import t
from billing_app.states.page import DENIED_MESSAGE, PageState

MAX_WIDTH = "760px"


def frame(*children: rx.Component) -> rx.Component:
    """Sidebar-first: full width in a 320-420 px iframe, centred with a max width on a desktop."""
    return rx.box(
        rx.vstack(*children, spacing="4", width="100%"),
        max_width=MAX_WIDTH,
        margin_x="auto",
        padding_x=["12px", "16px", "24px"],
        padding_y=["12px", "16px", "32px"],
        width="100%",
    )


def test_mode_badge() -> rx.Component:
    return rx.cond(
        PageState.test_mode,
        rx.badge(
            t("Test mode"),
            color_scheme="orange",
            variant="soft",
            high_contrast=True,
            title=t("Payments go to a local Stripe emulator"),
        ),
    )


def header() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(t("Billing"), size="1", color_scheme="gray", weight="medium"),
            rx.spacer(),
            test_mode_badge(),
            rx.badge(
                PageState.summary.plan_label,
                color_scheme=rx.cond(PageState.summary.is_unlimited, "grass", "gray"),
                variant="surface",
            ),
            spacing="2",
            align="center",
            width="100%",
        ),
        rx.heading(PageState.summary.account_name, size="6", as_="h1", overflow_wrap="anywhere"),
        spacing="1",
        width="100%",
    )


def denied() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.icon("lock", size=28, color=rx.color("gray", 10)),
            rx.heading(t("Billing Page unavailable"), size="4", as_="h1"),
            rx.text(t(DENIED_MESSAGE), color_scheme="gray", align="center"),
            align="center",
            spacing="3",
            padding_y="24px",
        ),
        width="100%",
        role="alert",
    )


def loading() -> rx.Component:
    return rx.center(
        rx.spinner(size="3"),
        padding_y="64px",
        width="100%",
        aria_label=t("Loading"),
        role="status",
    )
