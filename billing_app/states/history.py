"""The "Billing History" tab's state."""

from __future__ import annotations

import reflex as rx

from billing_app.db import session_scope
from billing_app.models import Account
from billing_app.services.gateway import get_gateway
from billing_app.services.summary import invoice_row
from billing_app.states.page import PageState
from billing_app.stripe_gateway import GatewayError


class HistoryState(rx.State):
    """The "Billing History" tab: the account's invoices, read from Stripe when the tab opens."""

    invoices: list[dict[str, str]] = []
    loading: bool = False
    error: str = ""

    @rx.event
    async def load(self):
        page = await self.get_state(PageState)
        if page.account_id is None:
            return
        self.loading, self.error = True, ""
        yield
        with session_scope() as session:
            customer_id = session.get(Account, page.account_id).stripe_customer_id
        try:
            invoices = get_gateway().list_invoices(customer_id)[0] if customer_id else []
            self.invoices = [invoice_row(invoice, invoice.id[-8:].upper()) for invoice in invoices]
        except GatewayError as exc:
            self.error = exc.user_message
        self.loading = False
