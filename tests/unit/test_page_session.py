"""When a signed-in tab's binding ends (idle time, password changed elsewhere), without a browser."""

import time
from types import SimpleNamespace

import pytest

from billing_app.models import Account
from billing_app.services.accounts import SessionFacts
from billing_app.states.page import PageState


def tab(last_activity_seconds_ago: float, epoch: int = 0) -> SimpleNamespace:
    return SimpleNamespace(_last_activity=time.time() - last_activity_seconds_ago, _session_epoch=epoch)


def account(password: bool, epoch: int = 0) -> SessionFacts:
    return SessionFacts.of(Account(id=1, slug="a", name="A", admin_email="a@a.test",
                                   password_hash="$argon2id$x" if password else None, session_epoch=epoch))


@pytest.mark.parametrize(
    "idle_seconds, password, tab_epoch, account_epoch, problem",
    [
        (10, True, 0, 0, None),
        (31 * 60, True, 0, 0, "password"),   # idle 30 minutes: back to the prompt
        (31 * 60, False, 0, 0, "denied"),    # no password to ask: a new launch link is needed
        (10, True, 0, 1, "password"),        # the password changed in another session
        (10, False, 0, 1, None),             # (cleared password: nothing to ask)
    ],
)
def test_session_problem(idle_seconds, password, tab_epoch, account_epoch, problem):
    assert PageState._session_problem(tab(idle_seconds, tab_epoch), account(password, account_epoch)) == problem


def test_a_deleted_account_ends_the_session():
    assert PageState._session_problem(tab(0), None) == "denied"
