"""The "Activity" tab: the account's audit log, newest first: when, who, what, and the outcome."""

from __future__ import annotations

import reflex as rx
from reflex_base.vars.base import VarData

from billing_app.components.lists import load_more_button, paged_tab
from billing_app.components.text import t
from billing_app.states.activity import ActivityState
from billing_app.states.page import PageState

# Intl.DateTimeFormat options (dateStyle/timeStyle cannot be combined with timeZoneName).
_TIME_FORMAT = (
    "{year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', "
    "timeZoneName: 'short'}"
)


def _local_time(instant: rx.Var) -> rx.Var:
    """An ISO 8601 instant as the viewer's browser writes it: the tab's language, the browser's
    time zone and its offset ("Mar 4, 2026, 10:05 AM GMT+1", "04.03.2026, 10:05 MEZ")."""
    return rx.Var(
        f"new Intl.DateTimeFormat({PageState.locale!s}, {_TIME_FORMAT})"
        f".format(new Date({instant!s}))",
        _var_type=str,
        _var_data=VarData.merge(instant._get_all_var_data(), PageState.locale._get_all_var_data()),
    )


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
            rx.el.time(_local_time(entry.at), date_time=entry.at),
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
    return rx.text(t("No activity yet."), size="2", color_scheme="gray", padding_y="24px")


def _list() -> rx.Component:
    return rx.fragment(
        rx.cond(
            ActivityState.entries.length() > 0,
            rx.box(
                rx.foreach(ActivityState.entries, _entry),
                role="list",
                aria_label=t("Activity"),
                width="100%",
            ),
            _empty(),
        ),
        load_more_button(
            ActivityState.has_more, ActivityState.load_more, ActivityState.loading_more
        ),
    )


def activity_tab() -> rx.Component:
    return paged_tab(
        rx.heading(t("Activity"), size="3", as_="h2"),
        rx.text(t("Times are in your time zone."), size="1", color_scheme="gray"),
        loading=ActivityState.loading,
        loading_label=t("Loading activity"),
        body=_list(),
        on_mount=ActivityState.load,
    )
