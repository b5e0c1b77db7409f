"""A raw Socket.IO client speaking the page's event protocol to the running app (`/_event/`), as a
script would instead of the page: every public State method is an event it may send, with any
arguments. None of them gives access, changes the database or reaches another account; the state
deltas the server sends back are checked as well as the database."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Self
from urllib.parse import urlencode

import pytest
import reflex as rx
import socketio
from sqlmodel import select

from billing_app.db import session_scope
from billing_app.models import Account, ActivatedUser, AllowedDomain
from billing_app.services.passwords import set_password
from billing_app.states.page import PageState
from billing_app.states.users import DomainsState, RemoveUserState, UsersState
from tests.security.tabs import PASSWORD, every_event, launch_token, new_account, run

pytestmark = pytest.mark.e2e
ROOT = rx.State.get_full_name()
NAMESPACE = "/_event"  # Reflex's event namespace, on the same path


class RawTab:
    """One tab's websocket, without a page: sends events by name, collects the state deltas."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.token = str(uuid.uuid4())
        self.client = socketio.AsyncClient(reconnection=False)
        self.deltas: list[dict[str, Any]] = []
        self.client.on("event", self._received, namespace=NAMESPACE)
        self._probe = False

    async def _received(self, update: dict[str, Any]) -> None:
        if update.get("delta"):
            self.deltas.append(update["delta"])

    async def __aenter__(self) -> Self:
        await self.client.connect(
            f"{self.base_url}?token={self.token}",
            socketio_path="/_event",
            namespaces=[NAMESPACE],
            transports=["websocket"],
            wait_timeout=10,
        )
        # The page's load (a first event also hydrates the tab and runs on_load): done with before
        # attacking.
        await self.event(PageState, "open_page")
        await asyncio.sleep(1)
        await self.send(f"{ROOT}.set_is_hydrated", {"value": True})
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.client.disconnect()

    async def send(
        self, name: str, payload: dict[str, Any] | None = None, query: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Send one event, then a probe that always answers (events of a tab run in order); the
        deltas the event caused."""
        first = len(self.deltas)
        as_path = "/?" + urlencode(query) if query else "/"
        router_data = {"pathname": "/", "asPath": as_path, "query": query or {}}
        await self.client.emit(
            "event",
            {"name": name, "payload": payload or {}, "router_data": router_data},
            namespace=NAMESPACE,
        )
        self._probe = not self._probe
        await self.client.emit(
            "event",
            {
                "name": f"{ROOT}.set_is_hydrated",
                "payload": {"value": self._probe},
                "router_data": {"pathname": "/", "asPath": "/", "query": {}},
            },
            namespace=NAMESPACE,
        )
        for _ in range(200):
            if any(
                f"is_hydrated{suffix}" in delta.get(ROOT, {})
                and delta[ROOT][f"is_hydrated{suffix}"] == self._probe
                for delta in self.deltas[first:]
                for suffix in ("_rx_state_", "")
            ):
                break
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError(f"no answer to {name}")
        return [delta for delta in map(without_probe, self.deltas[first:]) if delta]

    async def event(
        self,
        state: type[rx.State],
        handler: str,
        query: dict[str, str] | None = None,
        **payload: Any,
    ) -> list[dict[str, Any]]:
        return await self.send(f"{state.get_full_name()}.{handler}", payload, query)

    async def sign_in(self, account: Account, password: str | None = None) -> None:
        await self.event(PageState, "open_page", query={"launch": launch_token(account)})
        if password is not None:
            await self.event(PageState, "submit_password", form={"password": password})


def without_probe(delta: dict[str, Any]) -> dict[str, Any]:
    return {state: fields for state, fields in delta.items() if state != ROOT}


def page_field(deltas: list[dict[str, Any]], name: str) -> Any:
    """The last value the deltas give PageState's var `name` (None if they do not)."""
    value = None
    for delta in deltas:
        for field, field_value in delta.get(PageState.get_full_name(), {}).items():
            if field.removesuffix("_rx_state_") == name:
                value = field_value
    return value


def database_of(account: Account) -> tuple:
    with session_scope() as session:
        stored = session.get_one(Account, account.id)
        users = sorted(
            session.exec(select(ActivatedUser.email).where(ActivatedUser.account_id == account.id))
        )
        domains = sorted(
            session.exec(select(AllowedDomain.domain).where(AllowedDomain.account_id == account.id))
        )
        return (
            stored.plan,
            stored.licenses_purchased,
            stored.password_hash,
            stored.session_epoch,
            stored.stripe_customer_id,
            stored.cancel_at,
            users,
            domains,
        )


@pytest.mark.parametrize(
    "launched", [False, True], ids=["no launch link", "at the password prompt"]
)
def test_no_event_before_sign_in_gives_access_or_changes_anything(base_url, launched):
    victim = new_account(users=3)
    before = database_of(victim)

    async def attack():
        async with RawTab(base_url) as tab:
            if launched:
                await tab.sign_in(new_account(password=True))
            for state, handler, payload in every_event():
                deltas = await tab.event(state, handler, **payload)
                assert deltas == [], f"{state.__name__}.{handler}({payload}) changed {deltas}"
            # The victim's own users and domains, by name.
            for email in (f"user0@{victim.slug}.test", f"user1@{victim.slug}.test"):
                assert await tab.event(RemoveUserState, "ask_remove", email=email) == []
                assert await tab.event(RemoveUserState, "remove_user") == []
            assert (
                await tab.event(DomainsState, "save_domains", form_data={"domain-0": "evil.test"})
                == []
            )

    run(attack())
    assert database_of(victim) == before


def test_a_password_change_elsewhere_cannot_be_undone_by_the_tab(base_url):
    account = new_account(password=True, users=2)

    async def attack():
        async with RawTab(base_url) as tab:
            await tab.sign_in(account, PASSWORD)
            shown = await tab.event(UsersState, "load")
            assert f"user0@{account.slug}.test" in json.dumps(shown)
            with session_scope() as session:  # "Change Password" in another session
                stored = session.get_one(Account, account.id)
                set_password(
                    session, stored, PASSWORD + "!", actor="test", action="test.change_password"
                )
                epoch = stored.session_epoch
            for name, payload in [
                ("note_password_changed", {"session_epoch": epoch}),
                ("_note_password_changed", {"session_epoch": epoch}),
                ("setvar", {"var_name": "session_epoch", "value": epoch}),
                ("setvar", {"var_name": "_session_epoch", "value": epoch}),
                ("setvar", {"var_name": "_account_id", "value": account.id}),
                ("setvar", {"var_name": "phase", "value": "ready"}),
                ("_sign_in_as", {"account": {"id": account.id}}),
                ("_refresh", {}),
            ]:
                deltas = await tab.send(f"{PageState.get_full_name()}.{name}", payload)
                assert page_field(deltas, "phase") in (None, "password")
            after = await tab.event(UsersState, "load") + await tab.event(UsersState, "next_page")
            assert f"@{account.slug}.test" not in json.dumps(after)
            return tab.deltas

    deltas = run(attack())
    assert page_field(deltas, "phase") == "password"
    with session_scope() as session:
        assert (
            len(
                session.exec(
                    select(ActivatedUser).where(ActivatedUser.account_id == account.id)
                ).all()
            )
            == 2
        )


def test_a_signed_in_tab_cannot_reach_another_account(base_url):
    own, victim = new_account(users=1), new_account(users=3)
    victim_before = database_of(victim)
    victim_link = launch_token(victim)

    async def attack():
        async with RawTab(base_url) as victims_tab:  # the victim opens their page first
            await victims_tab.event(PageState, "open_page", query={"launch": victim_link})
        async with RawTab(base_url) as tab:
            await tab.sign_in(own)
            received = []
            for email in (f"user0@{victim.slug}.test", f"user2@{victim.slug}.test"):
                received += await tab.event(RemoveUserState, "ask_remove", email=email)
                received += await tab.event(RemoveUserState, "remove_user")
            received += await tab.event(UsersState, "set_search", value=victim.slug)
            received += await tab.event(
                DomainsState, "save_domains", form_data={"domain-0": f"partner-{victim.slug}.test"}
            )
            received += await tab.event(DomainsState, "release_orphaned_users")
            # The victim's (already redeemed) launch link in this tab: refused.
            received += await tab.event(PageState, "open_page", query={"launch": victim_link})
            assert page_field(received, "phase") == "denied"
            received += await tab.event(UsersState, "load")
            return received

    received = run(attack())
    assert database_of(victim) == victim_before
    # What the tab sent comes back (the search text); nothing else of the victim does.
    for victims_own in (
        f"user1@{victim.slug}.test",
        f"admin@{victim.slug}.test",
        '"total_users_rx_state_": 3',
    ):
        assert victims_own not in json.dumps(received)
