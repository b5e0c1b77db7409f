"""When a signed-in tab's binding ends (idle time, absolute lifetime, password changed elsewhere),
without a browser."""

import time
from types import SimpleNamespace

import pytest

from billing_app.models import Account
from billing_app.services.accounts import SessionFacts
from billing_app.states.page import PageState


def tab(
    last_activity_seconds_ago: float, epoch: int = 0, signed_in_seconds_ago: float = 3600
) -> SimpleNamespace:
    now = time.time()
    return SimpleNamespace(
        _last_activity=now - last_activity_seconds_ago,
        _signed_in_at=now - signed_in_seconds_ago,
        _session_epoch=epoch,
    )


def account(password: bool, epoch: int = 0) -> SessionFacts:
    return SessionFacts.of(
        Account(
            id=1,
            slug="a",
            name="A",
            admin_email="a@a.test",
            password_hash="$argon2id$x" if password else None,
            session_epoch=epoch,
        )
    )


@pytest.mark.parametrize(
    "idle_seconds, password, tab_epoch, account_epoch, problem",
    [
        (10, True, 0, 0, None),
        (31 * 60, True, 0, 0, "password"),  # idle 30 minutes: back to the prompt
        (31 * 60, False, 0, 0, "denied"),  # no password to ask: a new launch link is needed
        (10, True, 0, 1, "password"),  # the password changed in another session
        (10, False, 0, 1, None),  # (cleared password: nothing to ask)
    ],
)
def test_session_problem(idle_seconds, password, tab_epoch, account_epoch, problem):
    assert (
        PageState._session_problem(tab(idle_seconds, tab_epoch), account(password, account_epoch))
        == problem
    )


@pytest.mark.parametrize("password, problem", [(True, "password"), (False, "denied")])
def test_a_sign_in_ends_after_its_absolute_lifetime_however_active(password, problem):
    assert (
        PageState._session_problem(tab(10, signed_in_seconds_ago=12 * 3600 - 60), account(password))
        is None
    )
    assert (
        PageState._session_problem(tab(10, signed_in_seconds_ago=12 * 3600 + 60), account(password))
        == problem
    )


def test_a_deleted_account_ends_the_session():
    assert PageState._session_problem(tab(0), None) == "denied"
