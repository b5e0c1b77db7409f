"""What the page's lists share: the spinner while a list loads, "Load more", and the tab card
that loads its list whenever the tab is shown."""

from __future__ import annotations

from typing import Any

import reflex as rx

from billing_app.components.text import t


def list_spinner(label: Any) -> rx.Component:
    return rx.center(rx.spinner(), padding_y="24px", width="100%", aria_label=label, role="status")


def load_more_button(has_more: Any, on_click: Any, loading: Any) -> rx.Component:
    return rx.cond(
        has_more,
        rx.button(
            t("Load more"),
            on_click=on_click,
            loading=loading,
            variant="soft",
            width="100%",
            margin_top="8px",
        ),
    )


def paged_tab(
    *heading: rx.Component, loading: Any, loading_label: Any, body: rx.Component, on_mount: Any
) -> rx.Component:
    return rx.card(
        rx.vstack(
            *heading,
            rx.cond(loading, list_spinner(loading_label), body),
            spacing="2",
            width="100%",
        ),
        width="100%",
        # The tab's content mounts whenever the tab is shown (by click or keyboard).
        on_mount=on_mount,
    )
