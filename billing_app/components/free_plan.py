"""What a free account is offered: the free version beside the Unlimited Version, the prices, and
the steps of "How to Purchase the Unlimited Version" (seed: "Here is a link on How to Purchase the
Unlimited Version").

Every sentence is one literal, so that it can go into the translation catalogue whole.
"""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from billing_app.components.purchase import monthly_price, yearly_price
from billing_app.components.text import localized, t
from billing_app.i18n import N_

HELP_TITLE = N_("How to Purchase the Unlimited Version")
# The steps as the real form asks them (components/purchase.py: upgrade_dialog).
PURCHASE_STEPS = (
    N_('Click "Purchase Unlimited Version" on the Plan tab.'),
    N_("Enter the number of licenses: one for each user."),
    N_("Choose Monthly or Yearly billing. The form shows the total."),
    N_("Enter the name on the card and the card details: number, expiry date (MM/YYYY) and CVC."),
    N_('Read the conditions and check the "I Agree" box.'),
    N_('Click "Subscribe". If your bank asks, confirm the payment.'),
    N_(
        "The page now shows the Unlimited Version. Users of your allowed email domains activate "
        "their licenses in the connector; add other domains on the User Management tab."
    ),
)


def _features(title: str, items: tuple[str, ...], icon: str, color: str) -> rx.Component:
    return rx.vstack(
        rx.heading(t(title), size="2", as_="h3"),
        rx.el.ul(
            *(
                rx.el.li(
                    rx.hstack(
                        rx.icon(icon, size=16, color=rx.color(color, 11), flex_shrink="0"),
                        rx.text(t(item), size="2"),
                        spacing="2",
                        align="start",
                    ),
                    list_style="none",
                )
                for item in items
            ),
            style={"display": "flex", "flexDirection": "column", "gap": "6px"},
            margin="0",
            padding="0",
        ),
        spacing="2",
        width="100%",
    )


def _price(label: str, amount: Callable[[str], str]) -> rx.Component:
    return rx.hstack(
        rx.text(t(label), size="2", color_scheme="gray"),
        rx.text(localized(amount), size="3", weight="bold"),
        justify="between",
        align="center",
        width="100%",
    )


def _help_dialog() -> rx.Component:
    """A plain Radix dialog: opening it needs no server round trip."""
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button(
                rx.icon("circle-help", size=16),
                t(HELP_TITLE),
                variant="ghost",
                size="2",
                id="how-to-purchase",
                white_space="normal",
                text_align="left",
                height="auto",
            )
        ),
        rx.dialog.content(
            rx.dialog.title(t(HELP_TITLE), size="4"),
            rx.dialog.description(
                t("Everything is done on this page."),
                size="2",
                color_scheme="gray",
                margin_bottom="12px",
            ),
            rx.el.ol(
                *(rx.el.li(rx.text(t(step), size="2")) for step in PURCHASE_STEPS),
                # Radix resets list styles: the numbers are the point of these steps.
                style={
                    "listStyleType": "decimal",
                    "display": "grid",
                    "gap": "8px",
                    "fontSize": "var(--font-size-2)",
                },
                padding_left="24px",
                margin="0",
            ),
            rx.hstack(
                rx.dialog.close(rx.button(t("Close"), variant="soft", color_scheme="gray")),
                justify="end",
                width="100%",
                padding_top="16px",
            ),
            width="calc(100vw - 24px)",
            max_width="460px",
            padding=["16px", "20px", "24px"],
            id="how-to-purchase-help",
        ),
    )


def free_plan_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(t("Free version and Unlimited Version"), size="3", as_="h2"),
            rx.grid(
                _features(
                    N_("Free version"),
                    (
                        N_("The connector's free features, at no cost."),
                        N_("No licenses: your users cannot activate the Unlimited Version."),
                    ),
                    "minus",
                    "gray",
                ),
                _features(
                    N_("Unlimited Version"),
                    (
                        N_("One license for each user of your allowed email domains."),
                        N_("Add licenses or remove users at any time."),
                        N_("Monthly or yearly billing, invoices as PDF."),
                        N_("Cancel at any time: it ends with the paid period."),
                    ),
                    "check",
                    "grass",
                ),
                columns=rx.breakpoints(initial="1", sm="2"),
                spacing="4",
                width="100%",
            ),
            rx.box(
                _price(N_("Per license per month"), monthly_price),
                _price(N_("Per license per year"), yearly_price),
                padding="10px",
                background=rx.color("gray", 2),
                border_radius="6px",
                width="100%",
                id="unlimited-prices",
            ),
            _help_dialog(),
            spacing="3",
            width="100%",
        ),
        width="100%",
        id="free-plan-card",
    )
