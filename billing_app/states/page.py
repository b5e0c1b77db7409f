"""The Billing Page session: which account this browser tab is bound to and what it shows.

The tab is bound by redeeming a launch link once; the binding lives in
backend-only vars (leading underscore), so nothing of the account reaches the
browser until the link has been verified.
"""

from __future__ import annotations

import logging

import reflex as rx

from billing_app.db import session_scope
from billing_app.models import Account
from billing_app.services.accounts import redeem_launch_token
from billing_app.services.launch_tokens import InvalidLaunchToken
from billing_app.services.summary import build_summary
from billing_app.settings import get_settings

log = logging.getLogger(__name__)

DENIED_MESSAGE = "Open the Billing Page from the $ icon in the connector."
# Drops "?launch=…" from the address bar and history once the token is redeemed.
_FORGET_LAUNCH_TOKEN = "window.history.replaceState(null, '', window.location.pathname)"


class PageState(rx.State):
    phase: str = "loading"  # loading | denied | ready
    test_mode: bool = False
    summary: dict[str, str | int | bool] = {}

    _account_id: int | None = None
    _bound_token_id: str | None = None
    # Who opened the page (the launch link's email): the actor of audit entries.
    _actor: str = ""

    @rx.event
    def open_page(self):
        """on_load of "/": bind the tab from the launch link, or keep an earlier binding."""
        self.test_mode = get_settings().test_mode
        token = self.router.url.query_parameters.get("launch")
        if token:
            try:
                with session_scope() as session:
                    account, claims = redeem_launch_token(
                        session, get_settings(), token, already_bound_token_id=self._bound_token_id
                    )
                self._account_id, self._bound_token_id, self._actor = account.id, claims.token_id, claims.email
            except InvalidLaunchToken as exc:
                log.info("launch refused: %s", exc)
                return self._deny()
        if self._account_id is None:
            return self._deny()
        self.refresh()
        if token:
            return rx.call_script(_FORGET_LAUNCH_TOKEN)

    def _deny(self):
        self._account_id = self._bound_token_id = None
        self._actor = ""
        self.summary = {}
        self.phase = "denied"

    def refresh(self) -> None:
        with session_scope() as session:
            account = session.get(Account, self._account_id)
            if account is None:
                return self._deny()
            self.summary = build_summary(session, account).as_dict()
        self.phase = "ready"

    @property
    def account_id(self) -> int | None:
        return self._account_id

    @property
    def actor(self) -> str:
        return self._actor
