"""State and sessions: nothing happens before sign-in, a sign-in ends (idle, absolute lifetime,
password changed elsewhere, another account's or a forged link in the same tab) with every
account-bearing state emptied, and every text a client sends is cut to size. On the real states,
middleware and handlers (tests/security/tabs.py); the last test re-binds a real tab in Chromium."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any, get_args

import pytest
from playwright.sync_api import expect
from pydantic import ValidationError
from sqlmodel import select

import billing_app.states.page as page_module
from billing_app.db import session_scope
from billing_app.models import Account, ActivatedUser, AllowedDomain
from billing_app.services.billing import apply_card, apply_subscription
from billing_app.services.gateway import get_gateway
from billing_app.services.seeding import subscribe_with_test_card
from billing_app.settings import Settings
from billing_app.states.card import CardState
from billing_app.states.page import PageState, SignedIn, require_account
from billing_app.states.plan_changes import CancelState
from billing_app.states.purchase import LicensePurchaseState, UpgradeState
from billing_app.states.renewal_changes import ReduceLicensesState
from billing_app.states.users import DomainsState, RemoveUserState, UsersState
from tests.security.tabs import (
    PASSWORD,
    Tab,
    account_states,
    every_event,
    launch_token,
    migrated_database,
    new_account,
    own_fields,
    run,
)


@pytest.fixture(scope="module", autouse=True)
def database():
    migrated_database()


@pytest.mark.parametrize(
    "launched", [False, True], ids=["no launch link", "at the password prompt"]
)
def test_events_before_sign_in_change_no_state(launched):
    async def attack():
        tab = Tab()
        if launched:
            await tab.open(launch_token(new_account(password=True)))
            assert tab.page.phase == "password"
        for state, handler, payload in every_event():
            before = tab.held()
            await tab.send(state, handler, **payload)
            assert tab.held() == before, f"{state.__name__}.{handler}({payload})"

    run(attack())


def _something_else_than(field: Any) -> Any:
    default = field.default_value()
    if isinstance(default, bool):
        return not default
    if isinstance(default, int | float):
        return default + 3
    if isinstance(default, list):
        (item,) = get_args(field.annotated_type)
        if dataclasses.is_dataclass(item):  # a row of a list: every field of it says something
            return [item(**{row.name: "secret@acme.test" for row in dataclasses.fields(item)})]
        return ["secret@acme.test"]
    if isinstance(default, dict):
        return {"secret": "acme"}
    return "secret-acme"


def fill_every_account_state(tab: Tab) -> None:
    """Put something in every var of every account-bearing state, as a long session would."""
    for state in account_states():
        instance = tab.state(state)
        for name in own_fields(state):
            setattr(instance, name, _something_else_than(state.__fields__[name]))


def assert_emptied(tab: Tab) -> None:
    for state in account_states():
        instance = tab.state(state)
        for name, field in state.__fields__.items():
            if field._owner is state:
                assert getattr(instance, name) == field.default_value(), f"{state.__name__}.{name}"
    assert tab.page.summary is None
    assert tab.page.phase in ("password", "denied")


class Clock:
    def __init__(self, monkeypatch):
        import time

        self.now = time.time()
        monkeypatch.setattr(page_module, "time", SimpleNamespace(time=lambda: self.now))


def end_by_idling(tab, account, clock):
    clock.now += 31 * 60


def end_by_password_change_elsewhere(tab, account, clock):
    with session_scope() as session:
        stored = session.get_one(Account, account.id)
        stored.session_epoch += 1
        session.add(stored)


def end_by_forged_link(tab, account, clock):
    tab.query = {"launch": launch_token(account)[:-4] + "AAAA"}


def end_by_another_accounts_link(tab, account, clock):
    tab.query = {"launch": launch_token(new_account())}


@pytest.mark.parametrize("password", [False, True], ids=["no password", "password"])
@pytest.mark.parametrize(
    "ending",
    [
        end_by_idling,
        end_by_password_change_elsewhere,
        end_by_forged_link,
        end_by_another_accounts_link,
    ],
)
def test_a_sign_in_that_ends_empties_every_account_state(ending, password, monkeypatch):
    if ending is end_by_password_change_elsewhere and not password:
        pytest.skip("without a password there is no password to change")
    clock = Clock(monkeypatch)
    account = new_account(password=password)

    async def scenario():
        tab = Tab()
        await tab.sign_in(account)
        fill_every_account_state(tab)
        ending(tab, account, clock)
        # The first event after it: the page's own load for a link, any other event otherwise.
        if tab.query:
            await tab.send(PageState, "open_page")
        else:
            await tab.send(UsersState, "next_page")
        return tab

    tab = run(scenario())
    if ending is end_by_another_accounts_link:
        # Bound to the other account now: none of the first one's data is left.
        tab.page.phase = "password"
        tab.page.summary = None
    assert_emptied(tab)


def test_a_session_ends_after_its_absolute_lifetime_however_active(monkeypatch):
    clock = Clock(monkeypatch)
    account = new_account()

    async def scenario():
        tab = Tab()
        await tab.sign_in(account)
        for _ in range(int(12 * 60 / 20)):  # an event every 20 minutes for 12 hours
            clock.now += 20 * 60 - 1
            await tab.send(UsersState, "next_page")
            assert tab.page.phase == "ready"
        fill_every_account_state(tab)
        clock.now += 60
        await tab.send(UsersState, "next_page")
        return tab

    assert_emptied(run(scenario()))


@pytest.mark.parametrize("password", [False, True], ids=["no password", "password"])
def test_the_access_check_of_a_handler_ends_and_empties_a_sign_in_that_no_longer_holds(
    password, monkeypatch
):
    # The guard checks before the handler runs, but a sign-in may end between the two (a password
    # changed elsewhere, or here the idle limit passed): the handler's own check then empties every
    # state of the account at once, not at the next event.
    clock = Clock(monkeypatch)
    account = new_account(password=password)

    async def scenario():
        tab = Tab()
        await tab.sign_in(account)
        held = await require_account(tab.state(UsersState))
        fill_every_account_state(tab)
        clock.now += 31 * 60
        return tab, held, await require_account(tab.state(UsersState))

    tab, held, after = run(scenario())
    assert held == SignedIn(tab.page, account.id) and after is None
    assert_emptied(tab)


@pytest.mark.parametrize("password", [False, True], ids=["no password", "password"])
def test_the_tabs_own_launch_link_still_in_the_address_bar_keeps_the_sign_in(password):
    # An event the browser sends before the page's script has dropped the link from the address bar
    # (it reaches the browser after the delta showing the page) carries the link the tab is bound
    # to: it is not another link.
    account = new_account(password=password)

    async def scenario():
        tab = Tab()
        token = launch_token(account)
        await tab.open(token)
        if password:
            await tab.send(PageState, "submit_password", form={"password": PASSWORD})
        tab.query = {"launch": token}
        await tab.send(UsersState, "load")
        return tab

    tab = run(scenario())
    assert tab.page.phase == "ready"
    assert sorted(row.email for row in tab.state(UsersState).users) == [
        f"user{i}@{account.slug}.test" for i in range(2)
    ]


def test_session_lifetime_setting():
    assert Settings(_env_file=None).billing_session_max_hours == 12
    assert Settings(_env_file=None, billing_session_max_hours=24).billing_session_max_hours == 24
    for bad in (0, 25):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, billing_session_max_hours=bad)


def test_texts_a_client_sends_are_cut_to_size():
    huge = "x" * 1_000_000
    account = new_account()

    async def scenario():
        tab = Tab()
        await tab.sign_in(account)
        await tab.send(UsersState, "load")
        for state, handler, payload, var in [
            (RemoveUserState, "ask_remove", {"email": huge}, "confirm_email"),
            (UsersState, "set_search", {"value": huge}, "search"),
            (LicensePurchaseState, "set_count", {"value": huge}, "count"),
            (UpgradeState, "set_licenses", {"value": huge}, "licenses"),
            (UpgradeState, "set_card_name", {"value": huge}, "card_name"),
            (CardState, "set_card_name", {"value": huge}, "card_name"),
            (CancelState, "set_reason", {"value": huge}, "reason"),
            (CancelState, "set_features", {"value": huge}, "features"),
            (ReduceLicensesState, "set_licenses", {"value": huge}, "licenses"),
        ]:
            await tab.send(state, handler, **payload)
            assert len(getattr(tab.state(state), var)) <= 2001, f"{state.__name__}.{handler}"
        await tab.send(DomainsState, "add_domain_row")
        await tab.send(DomainsState, "edit_domain", index=0, value=huge)
        assert all(len(draft) <= 300 for draft in tab.state(DomainsState).domain_drafts)
        for _ in range(300):
            await tab.send(DomainsState, "add_domain_row")
        assert len(tab.state(DomainsState).domain_drafts) <= 200
        # Not text at all: kept out of the state, and nothing breaks.
        for value in ([huge], {"a": huge}, 7, None):
            await tab.send(RemoveUserState, "ask_remove", email=value)
            await tab.send(UsersState, "set_search", value=value)
            await tab.send(DomainsState, "edit_domain", index=0, value=value)
            assert isinstance(tab.state(RemoveUserState).confirm_email, str)
            assert isinstance(tab.state(UsersState).search, str)
            assert all(isinstance(draft, str) for draft in tab.state(DomainsState).domain_drafts)
        # Whole forms: refused with a message, nothing saved.
        await tab.send(
            DomainsState,
            "save_domains",
            form_data={f"domain-{i}": f"d{i}.test" + huge[:10_000] for i in range(1_000)},
        )
        assert tab.state(DomainsState).domain_error
        await tab.send(UsersState, "add_user", form_data={"email": huge + "@acme.test"})
        assert tab.state(UsersState).add_error
        for form in (["not", "a", "form"], "text", None):
            await tab.send(DomainsState, "save_domains", form_data=form)
            await tab.send(UsersState, "add_user", form_data=form)
            await tab.send(PageState, "submit_password", form=form)
        return tab

    run(scenario())
    with session_scope() as session:
        assert (
            len(
                session.exec(
                    select(AllowedDomain).where(AllowedDomain.account_id == account.id)
                ).all()
            )
            == 2
        )
        assert (
            len(
                session.exec(
                    select(ActivatedUser).where(ActivatedUser.account_id == account.id)
                ).all()
            )
            == 2
        )


@pytest.mark.e2e
def test_a_new_launch_link_in_the_tab_shows_nothing_of_the_first_account(app_settings, page):
    """Account A's users and invoices on screen, then B's launch link in the same tab: nothing of A
    reaches the browser again (every websocket frame is read) and B's tabs show none of it."""
    first, second = new_account(users=2), new_account(users=1)
    with session_scope() as session:
        stored = session.get_one(Account, first.id)
        card, subscription = subscribe_with_test_card(get_gateway(), first.id, 10)
        apply_subscription(stored, subscription)
        apply_card(stored, card)
        session.add(stored)
    base = app_settings.public_url
    page.goto(f"{base}/?launch={launch_token(first)}")
    page.get_by_role("tab", name="User Management").click()
    expect(page.get_by_text(f"user1@{first.slug}.test")).to_be_visible()
    page.get_by_role("tab", name="Billing History").click()
    expect(page.locator(".invoice-row").first).to_contain_text("Paid")

    frames: list[str] = []
    page.on(
        "websocket",
        lambda socket: socket.on("framereceived", lambda frame: frames.append(str(frame))),
    )
    page.goto(f"{base}/?launch={launch_token(second)}")
    page.get_by_role("tab", name="User Management").click()
    expect(page.get_by_text(f"user0@{second.slug}.test")).to_be_visible()
    page.get_by_role("tab", name="Billing History").click()
    expect(page.get_by_text("No invoices yet")).to_be_visible()
    page.get_by_role("tab", name="Plan").click()
    assert frames, "no websocket frame was seen"
    leaked = [frame for frame in frames if first.slug in frame]
    assert not leaked
    assert first.slug not in page.content()
