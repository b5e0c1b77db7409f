"""The Billing Page session: which account this browser tab is bound to and what it shows.

The tab is bound by redeeming a launch link once; the binding lives in
backend-only vars (leading underscore), so nothing of the account reaches the
browser until the link has been verified and, for a password-protected account,
the password given. A sign-in ends when the tab has been idle too long, after
its absolute lifetime, when the account's password changed since it signed in
(another session's change), or when another launch link is opened in the tab;
then every state showing something of the account is emptied, before the event
that noticed it goes on (so the browser is sent none of it again).

Every event handler that touches the account's data starts with `require_account`: the one
access check, which applies the session rules (services/session_rules.py) to the account as the
database has it now, and ends the sign-in when they say so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta
from typing import NamedTuple

import reflex as rx
from sqlmodel import Session

from billing_app.db import get_engine, session_scope
from billing_app.errors import MSG_ACCOUNT_MISSING
from billing_app.i18n import DEFAULT_LOCALE, N_, _, negotiate, set_locale, supported_locale
from billing_app.models import Account
from billing_app.services.accounts import SessionFacts, redeem_launch_token, session_facts
from billing_app.services.invoice_links import invoice_pdf_url
from billing_app.services.launch_tokens import InvalidLaunchToken, launch_token_id
from billing_app.services.page_sessions import end_page_session, start_page_session
from billing_app.services.passwords import sign_in
from billing_app.services.session_rules import (
    SessionLimits,
    SessionVerdict,
    TabSignIn,
    session_verdict,
)
from billing_app.services.summary import PageSummary, build_summary
from billing_app.settings import get_settings

log = logging.getLogger(__name__)

DENIED_MESSAGE = N_("Open the Billing Page from the $ icon in the connector.")
# Drops "?launch=…" from the address bar and history once the token is redeemed.
_FORGET_LAUNCH_TOKEN = "window.history.replaceState(null, '', window.location.pathname)"
# Reflex writes <html lang> once at build time; the tab's language is only known here.
_SET_HTML_LANG = "document.documentElement.lang = {locale};"


class PageState(rx.State):
    phase: str = "loading"  # loading | denied | password | ready
    test_mode: bool = False
    summary: PageSummary | None = None
    password_error: str = ""
    signing_in: bool = False
    # The tab's language: the launch link's, else the browser's (Accept-Language), else English.
    locale: str = DEFAULT_LOCALE

    # The account whose launch link this tab redeemed; `_account_id` once signed in.
    _launched_account_id: int | None = None
    _account_id: int | None = None
    _bound_token_id: str | None = None
    # Who opened the page (the launch link's email): the actor of audit entries.
    _actor: str = ""
    _session_epoch: int = 0
    _signed_in_at: float = 0.0
    _last_activity: float = 0.0
    # This tab's PageSession row while signed in (what its invoice PDF links are checked against).
    _page_session_id: str | None = None
    # A sign-in ended in this event: the account-bearing states are emptied before it ends.
    _emptying_due: bool = False

    @rx.event
    async def open_page(self):
        """on_load of "/": bind the tab from the launch link, or keep an earlier binding."""
        self.test_mode = get_settings().test_mode
        token = self.router.url.query_parameters.get("launch")
        if self._launched_account_id is None:
            self._use_locale(negotiate(self.router.headers.accept_language))
        if token:
            try:
                with session_scope() as session:
                    account, claims = redeem_launch_token(
                        session, get_settings(), token, already_bound_token_id=self._bound_token_id
                    )
                if claims.token_id != self._bound_token_id:
                    self._forget()
                self._launched_account_id, self._bound_token_id, self._actor = (
                    account.id,
                    claims.token_id,
                    claims.email,
                )
                self._use_locale(claims.locale or negotiate(self.router.headers.accept_language))
                if account.password_hash is None:
                    self._sign_in_as(account)
            except InvalidLaunchToken as exc:
                log.info("launch refused: %s", exc)
                self._deny()
        if self._launched_account_id is None:
            self._deny()
        else:
            # Asks for the password when not signed in yet, or when the binding just ended.
            self._refresh()
        await self._empty_account_states_if_due()
        script = _SET_HTML_LANG.format(locale=json.dumps(self.locale))
        if token and self.phase != "denied":
            script += _FORGET_LAUNCH_TOKEN
        return rx.call_script(script)

    def _use_locale(self, locale: str) -> None:
        """The tab's language, for what this event still says too (the summary, errors)."""
        self.locale = supported_locale(locale) or DEFAULT_LOCALE
        set_locale(self.locale)

    def _end_sign_in(self) -> None:
        self._end_page_session()
        if self._account_id is not None:
            self._account_id, self._emptying_due = None, True
        self.summary = None

    def _end_page_session(self) -> None:
        if self._page_session_id is not None:
            with session_scope() as session:
                end_page_session(session, self._page_session_id)
            self._page_session_id = None

    def _forget(self) -> None:
        self._end_sign_in()
        self._launched_account_id = self._bound_token_id = None
        self._actor = ""

    def _deny(self):
        self._forget()
        self.phase = "denied"

    def _ask_password(self) -> None:
        self._end_sign_in()
        self.phase = "password"

    def _sign_in_as(self, account: Account) -> None:
        self._end_page_session()
        with session_scope() as session:
            self._page_session_id = start_page_session(
                session,
                account.id,
                lifetime=timedelta(seconds=SessionLimits.of(get_settings()).lifetime_seconds),
            )
        self._account_id, self._session_epoch = account.id, account.session_epoch
        self._signed_in_at = self._last_activity = time.time()

    async def _empty_account_states_if_due(self) -> None:
        """Reset every other state of the page (lists, dialogs, their errors and client secrets)
        once a sign-in has ended: they all show something of the account."""
        if not self._emptying_due:
            return
        self._emptying_due = False
        for state in rx.State.get_substates():
            if state.__module__.startswith("billing_app.") and state is not PageState:
                (await self.get_state(state)).reset()

    async def _before_event(self, launch_token: str | None) -> bool:
        """Run before every event of the tab (states/session_guard.py): end a sign-in that no longer
        holds, empty the account's data when a sign-in ended or another launch link was opened in
        the tab (before even the page's reload is answered); whether the tab is signed in."""
        account_id = self._check_sign_in()
        if (
            launch_token
            and self._bound_token_id is not None
            and launch_token_id(get_settings().launch_secret, launch_token) != self._bound_token_id
        ):
            # Another launch link in this tab: nothing of the bound account until open_page has
            # checked it. Compared by id: an event sent before the script dropping the tab's own
            # link from the address bar arrived (it follows the delta showing the page) carries it.
            self._end_sign_in()
            self.phase, account_id = "loading", None
        await self._empty_account_states_if_due()
        return account_id is not None

    @rx.event
    async def sign_out(self):
        """End this tab's session: back to the password prompt (or, without a password, the launch
        message)."""
        self._sign_out()
        await self._empty_account_states_if_due()

    def _sign_out(self) -> None:
        if self._account_id is None:
            return
        with get_engine().connect() as connection:
            facts = session_facts(connection, self._account_id)
        if facts is not None and facts.has_password:
            self._ask_password()
        else:
            self._deny()

    @rx.event
    async def submit_password(self, form: dict):
        if self._launched_account_id is None:
            self._deny()
            return
        if self.signing_in:
            return
        self.signing_in, self.password_error = True, ""
        yield
        password = form.get("password") if isinstance(form, dict) else None
        result = await asyncio.to_thread(
            self._check_password, password[:512] if isinstance(password, str) else ""
        )
        self.signing_in = False
        if result:
            self.password_error = result
            return
        self._refresh()

    def _check_password(self, password: str) -> str:
        """Try the password; return the error message, or "" once signed in."""
        with session_scope() as session:
            account = session.get(Account, self._launched_account_id)
            if account is None:
                return _(MSG_ACCOUNT_MISSING)
            if account.password_hash is None:
                self._sign_in_as(account)
                return ""
            result = sign_in(session, account, password, actor=self._actor)
            if result.ok:
                self._sign_in_as(account)
            return result.message

    def _sign_in_holds(self, facts: SessionFacts | None) -> bool:
        """Apply the session rules to the account's `facts` (None: it is gone): note the activity
        while the sign-in holds, else end it (the password prompt, or denied)."""
        now = time.time()
        verdict = session_verdict(
            facts,
            TabSignIn(self._signed_in_at, self._last_activity, self._session_epoch),
            SessionLimits.of(get_settings()),
            now,
        )
        if verdict is SessionVerdict.ASK_PASSWORD:
            self._ask_password()
        elif verdict is SessionVerdict.DENY:
            self._deny()
        else:
            self._last_activity = now
        return verdict is SessionVerdict.OK

    def _check_sign_in(self) -> int | None:
        """The signed-in account if its sign-in still holds (one narrow read of the account), else
        None, the sign-in ended; what `require_account` and the session guard ask."""
        if self._account_id is None:
            return None
        with get_engine().connect() as connection:
            facts = session_facts(connection, self._account_id)
        return self._account_id if self._sign_in_holds(facts) else None

    def _refresh(self) -> None:
        if self._account_id is None:
            return self._ask_password() if self._launched_account_id is not None else self._deny()
        with session_scope() as session:
            account = session.get(Account, self._account_id)
            if not self._sign_in_holds(SessionFacts.of(account) if account else None):
                return
            self._show_summary(session, account)  # it holds: the account exists
        self.phase = "ready"

    def _show_summary(self, session: Session, account: Account) -> None:
        """The summary of the account as `session` sees it; the caller has checked the sign-in
        (`require_account`) in this event, e.g. to refresh the counts within its own
        transaction."""
        self.summary = build_summary(session, account)

    def _note_password_changed(self, session_epoch: int) -> None:
        """This tab changed the password: it stays signed in, the account's other sessions do
        not."""
        self._session_epoch = session_epoch

    @property
    def actor(self) -> str:
        return self._actor

    def _invoice_pdf_url(self, invoice_id: str, *, download: bool = False) -> str | None:
        """A new single-use link to the invoice's PDF for this tab's sign-in (checked by the caller
        with `require_account` in this event), or None without one."""
        if self._account_id is None or self._page_session_id is None:
            return None
        return invoice_pdf_url(
            get_settings(),
            account_id=self._account_id,
            invoice_id=invoice_id,
            page_session_id=self._page_session_id,
            session_epoch=self._session_epoch,
            download=download,
            locale=self.locale,
        )


class SignedIn(NamedTuple):
    """What `require_account` vouches for, for the rest of one event."""

    page: PageState
    account_id: int


async def require_account(state: rx.State) -> SignedIn | None:
    """The access check at the top of every event handler that touches the account's data: the
    tab's page state and its signed-in account if the sign-in still holds; else None, the sign-in
    ended (the password prompt, or denied) and every state of the account emptied."""
    page = await state.get_state(PageState)
    account_id = page._check_sign_in()
    await page._empty_account_states_if_due()
    return None if account_id is None else SignedIn(page, account_id)
