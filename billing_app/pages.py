"""The Billing Page ("/"): the frame, then either the account's page or why it cannot be shown."""

from __future__ import annotations

import reflex as rx

from billing_app.components.access import change_password_dialog, password_prompt, security_card
from billing_app.components.actions import billing_dialogs, manage_card, payment_failed_banner
from billing_app.components.activity import activity_tab
from billing_app.components.free_plan import free_plan_card
from billing_app.components.history import history_tab
from billing_app.components.shell import denied, frame, header, loading
from billing_app.components.summary import over_licensed_banner, summary_card
from billing_app.components.text import t
from billing_app.components.users import users_tab
from billing_app.states.page import PageState


def _account_page() -> rx.Component:
    return rx.fragment(
        header(),
        rx.tabs.root(
            rx.tabs.list(
                rx.tabs.trigger(t("Plan"), value="overview"),
                rx.tabs.trigger(t("Billing History"), value="history"),
                rx.tabs.trigger(t("User Management"), value="users"),
                rx.tabs.trigger(t("Activity"), value="activity"),
                size="2",
                # Four labels do not fit one row of the 320 px sidebar: they wrap, none hidden.
                flex_wrap="wrap",
            ),
            rx.tabs.content(
                rx.vstack(
                    payment_failed_banner(),
                    over_licensed_banner(),
                    summary_card(),
                    rx.cond(~PageState.summary.is_unlimited, free_plan_card()),
                    manage_card(),
                    security_card(),
                    spacing="4",
                    padding_top="16px",
                ),
                value="overview",
            ),
            rx.tabs.content(rx.box(history_tab(), padding_top="16px"), value="history"),
            rx.tabs.content(rx.box(users_tab(), padding_top="16px"), value="users"),
            rx.tabs.content(rx.box(activity_tab(), padding_top="16px"), value="activity"),
            default_value="overview",
            width="100%",
        ),
        billing_dialogs(),
        change_password_dialog(),
        rx.script(src="/billing_card.js"),
    )


def billing_page() -> rx.Component:
    return frame(
        rx.match(
            PageState.phase,
            ("ready", _account_page()),
            ("denied", denied()),
            ("password", password_prompt()),
            loading(),
        )
    )
