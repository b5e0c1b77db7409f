"""The "User Management" tab: activated add-on users and the allowed email domains."""

from __future__ import annotations

import reflex as rx

from billing_app.components.dialogs import inline_error
from billing_app.components.lists import list_spinner
from billing_app.components.text import t
from billing_app.states.page import PageState
from billing_app.states.users import (
    DOMAIN_FIELD_PREFIX,
    NEW_USER_INPUT_ID,
    DomainsState,
    RemoveUserState,
    UsersState,
)


def _licenses_line() -> rx.Component:
    used, purchased = (
        PageState.summary.licenses_used,
        PageState.summary.licenses_purchased,
    )
    over = used - purchased
    return rx.vstack(
        rx.text(
            rx.text.strong(used),
            t(" of "),
            rx.text.strong(purchased),
            t(" licenses used"),
            size="2",
            id="users-licenses",
        ),
        # A lower quantity from Stripe never removes anyone: the admin chooses whom to remove.
        rx.cond(
            PageState.summary.is_unlimited & (over > 0),
            rx.callout(
                rx.text(
                    t("More users than licenses: remove "),
                    rx.text.strong(over),
                    rx.cond(over == 1, t(" user"), t(" users")),
                    t(" or purchase more licenses. New users cannot be added until then."),
                ),
                icon="triangle-alert",
                color_scheme="amber",
                size="1",
                width="100%",
                id="over-licensed-warning",
            ),
        ),
        spacing="2",
        width="100%",
    )


def _remove_button(label: rx.Var, on_click: rx.EventSpec) -> rx.Component:
    """The "x" of a list row; its accessible name says what it removes."""
    return rx.icon_button(
        rx.icon("x", size=16),
        type="button",
        variant="ghost",
        color_scheme="gray",
        aria_label=label,
        title=label,
        on_click=on_click,
    )


def _user(user: rx.Var) -> rx.Component:
    # Plain elements styled by assets/billing.css: a page of rows re-renders on every list change.
    return rx.el.div(
        rx.el.div(
            rx.el.span(user.email, class_name="user-email"),
            rx.el.span(t("Activated "), user.activated, class_name="user-activated"),
            class_name="user-text",
        ),
        _remove_button(
            t("Remove %(email)s", email=user.email),
            RemoveUserState.ask_remove(user.email),
        ),
        class_name="user-row",
    )


def _pager() -> rx.Component:
    return rx.hstack(
        rx.text(UsersState.range_label, size="1", color_scheme="gray", id="users-range"),
        rx.spacer(),
        rx.icon_button(
            rx.icon("chevron-left", size=16),
            variant="soft",
            size="1",
            aria_label=t("Previous page"),
            disabled=UsersState.page_index == 0,
            on_click=UsersState.previous_page,
        ),
        rx.icon_button(
            rx.icon("chevron-right", size=16),
            variant="soft",
            size="1",
            aria_label=t("Next page"),
            disabled=UsersState.page_index >= UsersState.page_count - 1,
            on_click=UsersState.next_page,
        ),
        width="100%",
        align="center",
        padding_top="4px",
    )


def _user_list() -> rx.Component:
    return rx.cond(
        UsersState.loading,
        list_spinner(t("Loading users")),
        rx.cond(
            UsersState.total_users > 0,
            rx.vstack(rx.foreach(UsersState.users, _user), _pager(), spacing="0", width="100%"),
            rx.text(
                rx.cond(
                    UsersState.search != "",
                    t("No user matches your search."),
                    t("No user has activated a license yet."),
                ),
                size="2",
                color_scheme="gray",
                padding_y="8px",
            ),
        ),
    )


def _add_user_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.text(
                t("Add a user"),
                as_="label",
                custom_attrs={"htmlFor": NEW_USER_INPUT_ID},
                size="2",
                weight="medium",
            ),
            rx.hstack(
                rx.input(
                    id=NEW_USER_INPUT_ID,
                    name="email",
                    type="email",
                    placeholder="name@yourcompany.com",
                    auto_complete=False,
                    flex="1",
                    min_width="0",
                ),
                rx.button(t("Add user"), type="submit"),
                width="100%",
            ),
            inline_error(UsersState.add_error, id="add-user-error"),
            spacing="1",
            width="100%",
        ),
        on_submit=UsersState.add_user,
        reset_on_submit=False,
        width="100%",
    )


def _confirm_removal() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(t("Remove this user?")),
            rx.alert_dialog.description(
                rx.text.strong(RemoveUserState.confirm_email),
                t(
                    " loses the license at once: the connector stops working for them at its next "
                    "check."
                ),
                size="2",
                overflow_wrap="anywhere",
            ),
            rx.flex(
                # Keyboard users start on "No" (the safe answer); Tab reaches "Yes".
                rx.alert_dialog.cancel(
                    rx.button(
                        t("No"),
                        variant="soft",
                        color_scheme="gray",
                        on_click=RemoveUserState.cancel_remove,
                        auto_focus=True,
                    ),
                ),
                rx.button(t("Yes"), color_scheme="red", on_click=RemoveUserState.remove_user),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
            max_width="420px",
        ),
        open=RemoveUserState.confirm_email != "",
        on_open_change=RemoveUserState.cancel_remove,
    )


def users_section() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(t("Activated Add-on users"), size="3", as_="h2"),
            _licenses_line(),
            rx.input(
                rx.input.slot(rx.icon("search", size=16)),
                value=UsersState.search,
                on_change=UsersState.set_search,
                debounce_timeout=300,
                type="search",
                placeholder=t("Search users"),
                aria_label=t("Search users"),
                width="100%",
            ),
            _user_list(),
            _add_user_form(),
            _confirm_removal(),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _own_domain() -> rx.Component:
    return rx.hstack(
        rx.icon("lock", size=14, color=rx.color("gray", 10)),
        rx.text(DomainsState.own_domain, size="2", weight="medium"),
        rx.badge("your domain · always allowed", color_scheme="gray", variant="soft"),
        align="center",
        spacing="2",
        wrap="wrap",
        padding_y="6px",
    )


def _domain_row(domain: rx.Var, index: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.input(
            value=domain,
            name=f"{DOMAIN_FIELD_PREFIX}{index}",
            on_change=lambda value: DomainsState.edit_domain(index, value),
            placeholder="example.com",
            aria_label=t("Allowed domain %(number)s", number=(index + 1).to_string()),
            auto_complete=False,
            flex="1",
            min_width="0",
        ),
        _remove_button(
            t("Remove domain %(domain)s", domain=domain.to(str)),
            DomainsState.remove_domain_row(index),
        ),
        width="100%",
        align="center",
        class_name="domain-row",
    )


def _orphaned_users_offer() -> rx.Component:
    return rx.cond(
        DomainsState.orphaned_message != "",
        rx.callout(
            rx.vstack(
                rx.text(DomainsState.orphaned_message, t(" Release their licenses?")),
                rx.hstack(
                    rx.button(
                        t("Release them"),
                        size="1",
                        color_scheme="amber",
                        loading=DomainsState.releasing,
                        on_click=DomainsState.release_orphaned_users,
                    ),
                    rx.button(
                        t("Keep them"),
                        size="1",
                        variant="soft",
                        color_scheme="gray",
                        disabled=DomainsState.releasing,
                        on_click=DomainsState.keep_orphaned_users,
                    ),
                    spacing="2",
                ),
                spacing="2",
            ),
            icon="info",
            color_scheme="amber",
            size="1",
            width="100%",
            id="orphaned-users",
        ),
    )


def domains_section() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(t("Email Domain allowed to use licenses"), size="3", as_="h2"),
                rx.text(
                    t("Only users with an email address at these domains can activate a license."),
                    size="1",
                    color_scheme="gray",
                ),
                _own_domain(),
                rx.foreach(DomainsState.domain_drafts, _domain_row),
                inline_error(DomainsState.domain_error, id="domain-error"),
                rx.hstack(
                    rx.button(
                        rx.icon("plus", size=16),
                        t("Add domain"),
                        type="button",
                        variant="soft",
                        on_click=DomainsState.add_domain_row,
                    ),
                    rx.spacer(),
                    rx.button(t("Update"), type="submit"),
                    width="100%",
                ),
                _orphaned_users_offer(),
                spacing="2",
                width="100%",
            ),
            on_submit=DomainsState.save_domains,
            reset_on_submit=False,
        ),
        width="100%",
    )


def users_tab() -> rx.Component:
    # The tab's content mounts whenever the tab is shown (by click or keyboard).
    return rx.vstack(
        users_section(), domains_section(), spacing="4", width="100%", on_mount=UsersState.load
    )
