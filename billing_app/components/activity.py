"""The "Activity" tab: the account's audit log, newest first: when, who, what, and the outcome."""

from __future__ import annotations

import reflex as rx

from billing_app.states.activity import ActivityState


def _entry(entry: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(entry.what, size="2", weight="medium", min_width="0"),
            rx.spacer(),
            rx.badge(
                entry.outcome,
                color_scheme=rx.cond(entry.status == "done", "grass", "red"),
                variant="soft",
                white_space="normal",
            ),
            width="100%",
            align="start",
        ),
        rx.text(
            entry.when,
            " · ",
            entry.who,
            size="1",
            color_scheme="gray",
            word_break="break-word",
        ),
        spacing="1",
        padding_y="10px",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        width="100%",
        class_name="activity-row",
        role="listitem",
    )


def _empty() -> rx.Component:
    return rx.text("No activity yet.", size="2", color_scheme="gray", padding_y="24px")


def _list() -> rx.Component:
    return rx.fragment(
        rx.cond(
            ActivityState.entries.length() > 0,
            rx.box(
                rx.foreach(ActivityState.entries, _entry),
                role="list",
                aria_label="Activity",
                width="100%",
            ),
            _empty(),
        ),
        rx.cond(
            ActivityState.has_more,
            rx.button(
                "Load more",
                on_click=ActivityState.load_more,
                loading=ActivityState.loading_more,
                variant="soft",
                width="100%",
                margin_top="8px",
            ),
        ),
    )


def activity_tab() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Activity", size="3", as_="h2"),
            rx.text("Times are in UTC.", size="1", color_scheme="gray"),
            rx.cond(
                ActivityState.loading,
                rx.center(
                    rx.spinner(),
                    padding_y="24px",
                    width="100%",
                    aria_label="Loading activity",
                    role="status",
                ),
                _list(),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        # The tab's content mounts whenever the tab is shown (by click or keyboard).
        on_mount=ActivityState.load,
    )
