"""Reduce Licenses and Switch to Monthly: changes made at the next renewal, not now."""

from __future__ import annotations

import reflex as rx

from billing_app.components.dialogs import dialog, field, footer, inline_error, license_count_input
from billing_app.components.text import t
from billing_app.states.page import PageState
from billing_app.states.renewal_changes import ReduceLicensesState, SwitchMonthlyState

S = PageState.summary


def reduce_licenses_dialog() -> rx.Component:
    s = ReduceLicensesState
    used, purchased = S.licenses_used, S.licenses_purchased
    return dialog(
        s,
        t("Reduce Licenses"),
        t(
            "Fewer licenses from your next renewal on. Until then nothing changes, and nothing "
            "is credited for the current period."
        ),
        field(
            t("Licenses from the next renewal"),
            license_count_input(s.licenses, s.set_licenses, "renewal-licenses"),
            "renewal-licenses",
            rx.cond(
                s.licenses_error != "",
                rx.text(s.licenses_error, size="1", color_scheme="red"),
                rx.text(
                    # English and German share the plural rule: one, or not one.
                    rx.cond(
                        purchased == 1,
                        t("You have 1 license; %(used)s in use now.", used=used),
                        t(
                            "You have %(purchased)s licenses; %(used)s in use now.",
                            purchased=purchased,
                            used=used,
                        ),
                    ),
                    size="1",
                    color_scheme="gray",
                ),
            ),
        ),
        rx.text(
            t("To go below the licenses in use, remove users first in "),
            rx.link(
                t("User Management"),
                href="#",
                on_click=s.show_users.prevent_default,
                underline="always",  # told apart from the text by more than its colour
                id="reduce-show-users",
            ),
            ".",
            size="2",
        ),
        inline_error(
            s.error,
            id="reduce-licenses-error",
            visibility=rx.cond(s.refusal_outdated, "hidden", "visible"),
        ),
        footer(s, t("Reduce at Renewal"), s.submit, disabled=s.licenses_error != ""),
    )


def switch_monthly_dialog() -> rx.Component:
    s = SwitchMonthlyState
    return dialog(
        s,
        t("Switch to Monthly"),
        t("Your yearly period runs to its end; from the renewal on you are billed every month."),
        rx.text(
            t("Nothing is charged or credited now. The first monthly invoice is on "),
            rx.text.strong(S.next_invoice_date),
            ".",
            size="2",
        ),
        inline_error(s.error),
        footer(s, t("Switch at Renewal"), s.submit),
    )
