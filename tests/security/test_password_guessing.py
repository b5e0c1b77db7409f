"""Attack: guess the page password faster than the lockout allows.

1. Race it: 20 tabs send a wrong password at the same moment. Each used to read the failure
   count (0), spend ~50 ms in argon2 and only then record its attempt, so all 20 were
   checked. Now at most 5 are checked against argon2; the rest get the lockout message.
   Runs on SQLite always and on PostgreSQL with TEST_DATABASE_URL (as test_seat_races.py).
2. Go round it: Change Password's "current password" was checked without being counted or
   audited. Its failures now count in the same record and lock both ways in.
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import Session, select

from billing_app.db import make_engine, session_scope
from billing_app.models import Account, AuditLog, SignInAttempt
from billing_app.runner import migrate
from billing_app.services import passwords
from billing_app.services.accounts import create_account

PASSWORD = "correct horse battery"
RACERS = 20


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path}/guess.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    migrate(url)
    engine = make_engine(url, pool_size=RACERS, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def account_id(engine) -> int:
    with Session(engine) as session:
        slug = f"guess-{uuid.uuid4().hex[:12]}"
        account = create_account(
            session, slug=slug, name="Guess Corp", admin_email=f"admin@{slug}.test", actor="t"
        )
        passwords.set_password(session, account, PASSWORD, actor="t", action="account.set_password")
        session.commit()
        return account.id


@pytest.fixture
def argon2_checks(monkeypatch) -> list[str]:
    """Every password verified against argon2, in order."""
    checked: list[str] = []
    real = passwords.password_matches

    def counting(password_hash, password):
        checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "password_matches", counting)
    return checked


def _sign_in_as_a_tab(engine, account_id: int, password: str) -> passwords.SignInResult:
    # As PageState._check_password does it: read the account, then sign in, in one session.
    with session_scope(engine) as session:
        account = session.get(Account, account_id)
        return passwords.sign_in(session, account, password, actor="attacker")


def test_parallel_wrong_passwords_get_at_most_five_checks(engine, account_id, argon2_checks):
    start = threading.Barrier(RACERS)

    def guess(n: int) -> passwords.SignInResult:
        start.wait()
        return _sign_in_as_a_tab(engine, account_id, f"guess number {n}")

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        results = list(pool.map(guess, range(RACERS)))

    assert len(argon2_checks) <= passwords.MAX_FAILURES, (
        f"{len(argon2_checks)} guesses were checked"
    )
    assert not any(result.ok for result in results)
    locked = [result for result in results if result.locked_for is not None]
    assert len(locked) >= RACERS - passwords.MAX_FAILURES
    assert all(r.message.startswith("Too many incorrect passwords") for r in locked)
    # Even the right password is refused now, without being checked.
    checks_before = len(argon2_checks)
    assert _sign_in_as_a_tab(engine, account_id, PASSWORD).locked_for is not None
    assert len(argon2_checks) == checks_before


def _change(engine, account_id: int, current: str) -> str:
    with session_scope(engine) as session:
        account = session.get(Account, account_id)
        try:
            passwords.change_password(
                session,
                account,
                current,
                "a brand new secret",
                "a brand new secret",
                actor="attacker",
            )
        except passwords.PasswordRuleError as exc:
            return str(exc)
    return "changed"


def test_change_password_guesses_are_counted_audited_and_locked_out(
    engine, account_id, argon2_checks
):
    messages = [
        _change(engine, account_id, f"guess {n}") for n in range(passwords.MAX_FAILURES + 3)
    ]
    assert len(argon2_checks) == passwords.MAX_FAILURES
    assert messages[0] == "The current password is incorrect. 4 attempts left."
    assert all(
        m.startswith("Too many incorrect passwords") for m in messages[passwords.MAX_FAILURES :]
    )
    # The right password does not get through the lock either way in.
    assert _change(engine, account_id, PASSWORD).startswith("Too many incorrect passwords")
    assert _sign_in_as_a_tab(engine, account_id, PASSWORD).locked_for is not None
    with Session(engine) as session:
        failures = session.exec(
            select(SignInAttempt).where(
                SignInAttempt.account_id == account_id, ~SignInAttempt.succeeded
            )
        ).all()
        audited = session.exec(
            select(AuditLog).where(
                AuditLog.account_id == account_id,
                AuditLog.action == "page.change_password",
                AuditLog.outcome == "error",
            )
        ).all()
        assert session.get(Account, account_id).session_epoch == 1  # unchanged since set_password
    assert len(failures) == passwords.MAX_FAILURES
    assert len(audited) == passwords.MAX_FAILURES + 4


def test_change_password_sign_in_failures_share_one_count(engine, account_id, argon2_checks):
    for n in range(3):
        assert not _sign_in_as_a_tab(engine, account_id, f"guess {n}").ok
    assert (
        _change(engine, account_id, "guess 3")
        == "The current password is incorrect. 1 attempt left."
    )
    assert _sign_in_as_a_tab(engine, account_id, "guess 4").locked_for is not None


def test_a_right_current_password_with_a_refused_new_one_is_no_failure(
    engine, account_id, argon2_checks
):
    with session_scope(engine) as session:
        account = session.get(Account, account_id)
        with pytest.raises(passwords.PasswordRuleError, match="do not match"):
            passwords.change_password(
                session, account, PASSWORD, "a brand new secret", "another secret", actor="t"
            )
    for n in range(4):
        assert not _sign_in_as_a_tab(engine, account_id, f"guess {n}").ok
    assert _sign_in_as_a_tab(engine, account_id, PASSWORD).ok
