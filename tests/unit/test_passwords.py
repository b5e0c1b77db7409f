from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from billing_app.db import make_engine
from billing_app.models import Account, AuditLog
from billing_app.runner import migrate
from billing_app.services import passwords
from billing_app.services.accounts import SessionFacts, create_account, session_facts


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def session(tmp_path):
    url = f"sqlite:///{tmp_path}/p.db"
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def account(session) -> Account:
    account = create_account(
        session, slug="acme", name="Acme Corp", admin_email="admin@acme.test", actor="t"
    )
    passwords.set_password(
        session, account, "correct horse battery", actor="t", action="account.set_password"
    )
    session.commit()
    return account


def test_hash_is_argon2id_and_verifies():
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$") and "correct" not in hashed
    assert passwords.password_matches(hashed, "correct horse battery")
    assert not passwords.password_matches(hashed, "correct horse batterY")
    assert not passwords.password_matches(None, "x") and not passwords.password_matches(
        "garbage", "x"
    )
    assert passwords.hash_password("same") != passwords.hash_password("same")  # salted


@pytest.mark.parametrize(
    "new, confirm, message",
    [
        ("short", "short", "at least 10"),
        ("long enough 1", "long enough 2", "do not match"),
        ("Acme Corp", "Acme Corp", "at least 10"),
        ("admin@acme.test", "admin@acme.test", "account name or the admin"),
        ("ACME CORP ", "ACME CORP ", "account name"),
        ("x" * 300, "x" * 300, "at most"),
    ],
)
def test_password_rules(account, new, confirm, message):
    with pytest.raises(passwords.PasswordRuleError, match=message):
        passwords.check_new_password(account, new, confirm)


def test_name_as_password_is_refused_when_long_enough(session):
    account = create_account(
        session, slug="long", name="Longer Company Name", admin_email="a@long.test", actor="t"
    )
    with pytest.raises(passwords.PasswordRuleError, match="account name"):
        passwords.check_new_password(account, "longer company name", "longer company name")


def test_wrong_passwords_count_down_then_lock_for_15_minutes(session, account):
    clock = Clock()
    results = [
        passwords.sign_in(session, account, "wrong", actor="t", clock=clock) for _ in range(4)
    ]
    assert [r.attempts_left for r in results] == [4, 3, 2, 1]
    assert results[0].message == "Incorrect password. 4 attempts left."
    fifth = passwords.sign_in(session, account, "wrong", actor="t", clock=clock)
    assert fifth.locked_for == timedelta(minutes=15)
    clock.advance(minutes=5)
    # Even the right password is refused while locked, and says how long is left.
    locked = passwords.sign_in(session, account, "correct horse battery", actor="t", clock=clock)
    assert not locked.ok and locked.locked_for == timedelta(minutes=10)
    assert locked.message == "Too many incorrect passwords. Try again in 10 minutes."
    clock.advance(minutes=10, seconds=1)
    assert passwords.sign_in(session, account, "correct horse battery", actor="t", clock=clock).ok


def test_failures_spread_beyond_the_window_do_not_lock(session, account):
    clock = Clock()
    for _ in range(4):
        passwords.sign_in(session, account, "wrong", actor="t", clock=clock)
    clock.advance(minutes=16)
    result = passwords.sign_in(session, account, "wrong", actor="t", clock=clock)
    assert result.locked_for is None and result.attempts_left == 4


def test_a_success_resets_the_count(session, account):
    clock = Clock()
    for _ in range(4):
        passwords.sign_in(session, account, "wrong", actor="t", clock=clock)
    assert passwords.sign_in(session, account, "correct horse battery", actor="t", clock=clock).ok
    clock.advance(seconds=1)
    assert passwords.sign_in(session, account, "wrong", actor="t", clock=clock).attempts_left == 4


def test_lockout_survives_a_new_session(tmp_path, session, account):
    clock = Clock()
    for _ in range(5):
        passwords.sign_in(session, account, "wrong", actor="t", clock=clock)
    session.commit()
    with Session(session.get_bind()) as fresh:
        assert passwords.lockout_remaining(fresh, account.id, clock()) == timedelta(minutes=15)


def test_change_password_bumps_the_session_epoch_and_is_audited(session, account):
    epoch = account.session_epoch
    with pytest.raises(passwords.PasswordRuleError, match="current password is incorrect"):
        passwords.change_password(
            session, account, "nope", "a brand new secret", "a brand new secret", actor="t"
        )
    passwords.change_password(
        session,
        account,
        "correct horse battery",
        "a brand new secret",
        "a brand new secret",
        actor="t",
    )
    assert account.session_epoch == epoch + 1
    assert passwords.password_matches(account.password_hash, "a brand new secret")
    assert not passwords.password_matches(account.password_hash, "correct horse battery")
    actions = session.exec(select(AuditLog.action)).all()
    assert "page.change_password" in actions


def test_session_facts_are_what_is_stored(session, account):
    # What every page event checks its sign-in against (require_account, services/session_rules.py).
    assert session_facts(session.connection(), account.id) == SessionFacts(
        True, account.session_epoch
    )
    passwords.set_password(session, account, None, actor="t", action="page.clear_password")
    session.flush()
    assert session_facts(session.connection(), account.id) == SessionFacts(
        False, account.session_epoch
    )
    assert session_facts(session.connection(), account.id + 1000) is None
