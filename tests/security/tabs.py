"""Browser tabs of the Billing Page simulated in this process: the real states, middleware and event
handlers of the app, driven as the websocket would drive them, without a browser or a server."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import inspect
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import reflex as rx
from reflex_base.event import Event

from billing_app.billing_app import app
from billing_app.db import session_scope
from billing_app.models import Account, ActivatedUser, AllowedDomain
from billing_app.plans import Plan
from billing_app.runner import migrate
from billing_app.services.accounts import create_account, launch_url
from billing_app.services.passwords import set_password
from billing_app.settings import get_settings
from billing_app.states.page import PageState

PASSWORD = "correct horse battery staple"

# Arguments an attacker sends, by parameter name: as close to a real call as possible, so that a
# handler that skipped its access check would change something.
ATTACK_ARGUMENTS: dict[str, Any] = {
    "value": "7",
    "email": "user0@victim.test",
    "index": 0,
    "result": {"ok": True},
    "_browser_result": {"ok": True},
    "invoice_id": "in_victim",
    "number": "VICTIM-0001",
    "form": {
        "password": "guess",
        "current_password": "guess",
        "new_password": "n3w-Passw0rd!",
        "confirm_password": "n3w-Passw0rd!",
    },
    "form_data": {"email": "mallory@victim.test", "domain-0": "evil.test"},
}
SIGN_IN_EVENTS = {(PageState, "open_page"), (PageState, "submit_password")}


def page_states() -> list[type[rx.State]]:
    """The app's own states (Reflex's internal ones aside)."""
    return [
        state for state in rx.State.get_substates() if state.__module__.startswith("billing_app.")
    ]


def account_states() -> list[type[rx.State]]:
    """Every state that may show something of the bound account, besides the page's own."""
    return [state for state in page_states() if state is not PageState]


def own_fields(state: type[rx.State]) -> list[str]:
    """The vars a state holds itself, the browser's and the backend-only ones."""
    return [name for name, field in state.__fields__.items() if field._owner is state]


def migrated_database() -> None:
    migrate(get_settings().database_url)


def new_account(*, password: bool = False, users: int = 2) -> Account:
    """An Unlimited account of the app's database: admin admin@<slug>.test, users
    user<i>@<slug>.test, an extra allowed domain partner-<slug>.test."""
    slug = f"tab-{uuid.uuid4().hex[:10]}"
    with session_scope() as session:
        account = create_account(
            session, slug=slug, name=slug, admin_email=f"admin@{slug}.test", actor="test"
        )
        account.plan, account.licenses_purchased = Plan.UNLIMITED, 10
        session.add_all(
            ActivatedUser(account_id=account.id, email=f"user{i}@{slug}.test") for i in range(users)
        )
        session.add(AllowedDomain(account_id=account.id, domain=f"partner-{slug}.test"))
        if password:
            set_password(session, account, PASSWORD, actor="test", action="test.set_password")
        session.flush()
        session.expunge(account)
    return account


def launch_token(account: Account) -> str:
    with session_scope() as session:
        return launch_url(get_settings(), session.get_one(Account, account.id)).split("launch=", 1)[
            1
        ]


class Tab:
    """One tab's state tree; `send` runs an event through the app's middleware and its handler."""

    def __init__(self) -> None:
        self.root = rx.State(_reflex_internal_init=True)
        self.query: dict[str, str] = {}

    def state(self, state: type[rx.State]) -> Any:
        return self.root.get_substate(state.get_full_name().split(".")[1:])

    @property
    def page(self) -> PageState:
        return self.state(PageState)

    async def send(self, state: type[rx.State], handler: str, **payload: Any) -> None:
        as_path = "/?" + urlencode(self.query) if self.query else "/"
        router_data = {"pathname": "/", "asPath": as_path, "query": dict(self.query)}
        self.root.router_data = self.root._update_router_vars(router_data, self.root.router_data)
        event = Event(
            name=f"{state.get_full_name()}.{handler}", router_data=router_data, payload=payload
        )
        if await app._preprocess(self.root, event) is not None:
            return
        # A handler that raises: the app logs it and tells the browser; what the state holds is what
        # counts.
        with contextlib.suppress(Exception):
            outcome = state.event_handlers[handler].fn(self.state(state), **payload)
            if inspect.isawaitable(outcome):
                await outcome
            elif inspect.isasyncgen(outcome):
                async for _ in outcome:
                    pass
            elif inspect.isgenerator(outcome):
                for _ in outcome:
                    pass

    async def open(self, token: str) -> None:
        """The page loaded from a launch link (its on_load)."""
        self.query = {"launch": token}
        await self.send(PageState, "open_page")
        self.query = {}

    async def sign_in(self, account: Account) -> None:
        await self.open(launch_token(account))
        if self.page.phase == "password":
            await self.send(PageState, "submit_password", form={"password": PASSWORD})
        assert self.page.phase == "ready", self.page.password_error

    def held(self) -> dict[str, dict[str, Any]]:
        """What the server holds for this tab, state by state (router data aside)."""
        return {
            state.get_full_name(): {
                name: copy.deepcopy(getattr(self.state(state), name)) for name in own_fields(state)
            }
            for state in page_states()
        }


def every_event() -> list[tuple[type, str, dict[str, Any]]]:
    """Each handler of the page's states with attack arguments; `setvar` once per var of its
    state."""
    events = []
    for state in [PageState, *account_states()]:
        for name, handler in sorted(state.event_handlers.items()):
            if (state, name) in SIGN_IN_EVENTS:
                continue
            if name == "setvar":
                events += [
                    (state, name, {"var_name": var, "value": "7"}) for var in state.base_vars
                ]
                continue
            parameters = list(inspect.signature(handler.fn).parameters)[1:]
            events.append(
                (state, name, {parameter: ATTACK_ARGUMENTS[parameter] for parameter in parameters})
            )
    return events


def run(coroutine: Any) -> Any:
    """Run a coroutine to its end on a loop of its own (in a thread: Playwright's sync API keeps one
    running in the main thread once a browser test has run)."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(contextvars.copy_context().run, asyncio.run, coroutine).result()
