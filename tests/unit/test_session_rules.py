"""When a signed-in tab's sign-in ends (idle time, absolute lifetime, password changed elsewhere,
account gone): the session rules, without a browser or a database."""

import pytest

from billing_app.services.accounts import SessionFacts
from billing_app.services.session_rules import (
    SessionLimits,
    SessionVerdict,
    TabSignIn,
    session_verdict,
)
from billing_app.settings import Settings

NOW = 1_800_000_000.0
LIMITS = SessionLimits(idle_seconds=30 * 60, lifetime_seconds=12 * 3600)
OK, ASK_PASSWORD, DENY = SessionVerdict.OK, SessionVerdict.ASK_PASSWORD, SessionVerdict.DENY


def tab(idle_seconds: float, epoch: int = 0, signed_in_seconds_ago: float = 3600) -> TabSignIn:
    return TabSignIn(
        signed_in_at=NOW - signed_in_seconds_ago,
        last_activity=NOW - idle_seconds,
        session_epoch=epoch,
    )


def verdict(tab: TabSignIn, *, password: bool, epoch: int = 0) -> SessionVerdict:
    return session_verdict(
        SessionFacts(has_password=password, session_epoch=epoch), tab, LIMITS, NOW
    )


@pytest.mark.parametrize("password", [True, False])
def test_an_active_sign_in_holds(password):
    assert verdict(tab(10), password=password) is OK
    assert verdict(tab(30 * 60 - 1), password=password) is OK


@pytest.mark.parametrize("password, expected", [(True, ASK_PASSWORD), (False, DENY)])
def test_idle_longer_than_the_limit_ends_the_sign_in(password, expected):
    # With a password the tab asks for it again; without, only a new launch link helps.
    assert verdict(tab(30 * 60 + 1), password=password) is expected


@pytest.mark.parametrize("password, expected", [(True, ASK_PASSWORD), (False, DENY)])
def test_a_sign_in_ends_after_its_absolute_lifetime_however_active(password, expected):
    assert verdict(tab(10, signed_in_seconds_ago=12 * 3600 - 60), password=password) is OK
    assert verdict(tab(10, signed_in_seconds_ago=12 * 3600 + 60), password=password) is expected


def test_a_password_changed_elsewhere_asks_for_it_again():
    assert verdict(tab(10, epoch=0), password=True, epoch=1) is ASK_PASSWORD


def test_a_cleared_password_leaves_nothing_to_ask():
    # The epoch moved because the password was removed: the tab stays signed in until it expires.
    assert verdict(tab(10, epoch=0), password=False, epoch=1) is OK
    assert verdict(tab(30 * 60 + 1, epoch=0), password=False, epoch=1) is DENY


def test_a_deleted_account_ends_the_sign_in():
    assert session_verdict(None, tab(0), LIMITS, NOW) is DENY


def test_the_limits_are_the_settings(tmp_path):
    settings = Settings(
        _env_file=None,
        billing_data_dir=tmp_path,
        billing_session_idle_minutes=5,
        billing_session_max_hours=2,
    )
    assert SessionLimits.of(settings) == SessionLimits(idle_seconds=300, lifetime_seconds=7200)
