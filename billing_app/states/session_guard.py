"""Before any event of the page's states runs: the tab's sign-in is checked, and an event that needs
one is dropped when there is none.

Reflex makes every public method of a State an event that any websocket client may send, with any
arguments. Handlers check the sign-in themselves (`require_account` in states/page.py, the check
this guard makes too); the guard also makes sure nothing of the page's
state changes before sign-in, and that the account's data is emptied as soon as a sign-in ends,
before Reflex answers even the page's reload (hydrate) with the state it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reflex.middleware import Middleware
from reflex.state import BaseState, StateUpdate
from reflex_base.event import Event

from billing_app.i18n import set_locale
from billing_app.states.page import PageState

if TYPE_CHECKING:
    from reflex.app import App

# What a tab may do before it is signed in: open the page from a launch link, give the password.
SIGN_IN_EVENTS = frozenset({"open_page", "submit_password"})


def _launch_token(event: Event) -> str | None:
    query = event.router_data.get("query") if isinstance(event.router_data, dict) else None
    token = query.get("launch") if isinstance(query, dict) else None
    return token if isinstance(token, str) else None


def _needs_sign_in(event: Event) -> bool:
    state_name, _, handler = event.name.rpartition(".")
    if not state_name.rpartition(".")[2].startswith("billing_app___"):
        return False  # Reflex's own events (hydrate, on_load, …) hold nothing of an account
    return not (state_name == PageState.get_full_name() and handler in SIGN_IN_EVENTS)


class SessionGuard(Middleware):
    async def preprocess(self, app: App, state: BaseState, event: Event) -> StateUpdate | None:
        page = await state.get_state(PageState)
        # What the event says (errors, toasts, the summary) is in the tab's language.
        set_locale(page.locale)
        signed_in = await page._before_event(_launch_token(event))
        if signed_in or not _needs_sign_in(event):
            return None
        # Dropped; what the check itself changed (a sign-in that just ended) still reaches the
        # browser.
        root = state._get_root_state()
        delta = await root._get_resolved_delta()
        root._clean()
        return StateUpdate(delta=delta)
