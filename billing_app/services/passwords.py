"""Optional page passwords: argon2id hashes, password rules, lockout after repeated failures.

Lockout: 5 failed attempts within 15 minutes lock sign-in for 15 minutes from
the fifth failure. Attempts are rows in the database, so a restart (or another
worker) sees the same count. Sign In and Change Password's current password are
one count: each attempt is recorded as a failure, under a per-account lock, before
argon2 runs, so parallel tabs cannot get more guesses than the count allows.
The clock is a parameter so tests can move time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from billing_app.errors import ErrorCode, UserError
from billing_app.i18n import _, ngettext
from billing_app.models import Account, SignInAttempt, utcnow
from billing_app.services import audit

MIN_LENGTH = 10
MAX_LENGTH = 256
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)

# argon2id (the library's default type) with its RFC 9106 "low memory" parameters.
_hasher = PasswordHasher()

Clock = Callable[[], datetime]


class PasswordRuleError(UserError):
    """The new password is not acceptable; the message says why."""

    code = ErrorCode.INVALID_PASSWORD


@dataclass(frozen=True)
class SignInResult:
    ok: bool
    attempts_left: int = 0
    locked_for: timedelta | None = None

    def refusal(self, wrong: str) -> str:
        """Why the password was refused: `wrong` plus the attempts left, or the lockout."""
        if self.locked_for is not None:
            minutes = max(1, -(-int(self.locked_for.total_seconds()) // 60))
            return ngettext(
                "Too many incorrect passwords. Try again in %(count)s minute.",
                "Too many incorrect passwords. Try again in %(count)s minutes.",
                minutes,
            ) % {"count": minutes}
        left = ngettext(
            "%(count)s attempt left.", "%(count)s attempts left.", self.attempts_left
        ) % {"count": self.attempts_left}
        return f"{wrong} {left}"

    @property
    def message(self) -> str:
        return "" if self.ok else self.refusal(_("Incorrect password."))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Constant-time argon2id verification; any malformed input is simply no match."""
    if not password_hash or not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_new_password(account: Account, password: str, confirmation: str) -> None:
    if password != confirmation:
        raise PasswordRuleError(_("The new passwords do not match."))
    if len(password) < MIN_LENGTH:
        raise PasswordRuleError(_("Use at least %(count)s characters.") % {"count": MIN_LENGTH})
    if len(password) > MAX_LENGTH:
        raise PasswordRuleError(_("Use at most %(count)s characters.") % {"count": MAX_LENGTH})
    lowered = password.strip().lower()
    if lowered in {account.name.strip().lower(), account.admin_email.lower(), account.slug.lower()}:
        raise PasswordRuleError(
            _("Do not use the account name or the admin email as the password.")
        )


def _failures_since(session: Session, account_id: int, since: datetime) -> list[datetime]:
    last_success = session.exec(
        select(sa.func.max(SignInAttempt.at)).where(
            SignInAttempt.account_id == account_id, SignInAttempt.succeeded
        )
    ).one()
    start = max(since, last_success) if last_success else since
    return list(
        session.exec(
            select(SignInAttempt.at)
            .where(
                SignInAttempt.account_id == account_id,
                ~col(SignInAttempt.succeeded),
                SignInAttempt.at > start,
            )
            .order_by(col(SignInAttempt.at))
        )
    )


def lockout_remaining(session: Session, account_id: int, now: datetime) -> timedelta | None:
    """How long sign-in stays locked, or None when it is open."""
    failures = _failures_since(session, account_id, now - FAILURE_WINDOW - LOCKOUT)
    # Locked when some 5 consecutive failures fall within one window and the lock has not run out.
    for index in range(len(failures) - MAX_FAILURES + 1):
        first, fifth = failures[index], failures[index + MAX_FAILURES - 1]
        if fifth - first <= FAILURE_WINDOW and fifth + LOCKOUT > now:
            return fifth + LOCKOUT - now
    return None


def _lock_password_checks(session: Session, account_id: int) -> None:
    """Serialise the account's password checks until the session's transaction ends.

    PostgreSQL: a row lock on the account. SQLite: the database's write lock, taken now
    (BEGIN IMMEDIATE) instead of at the first write, so no other writer can record an
    attempt between the count read here and this attempt's insert.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # pysqlite opens a transaction only before a write: none open means no write lock held yet.
        dbapi = connection.connection.dbapi_connection
        if dbapi is not None and not dbapi.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.execute(
            sa.select(col(Account.id)).where(col(Account.id) == account_id).with_for_update()
        )


def verify_counted(
    session: Session,
    account: Account,
    password: str,
    *,
    actor: str,
    action: audit.AuditAction,
    clock: Clock = utcnow,
) -> SignInResult:
    """Check the account's password as one counted, audited attempt (Sign In, Change Password).

    Commits the session: the attempt is recorded as a failure, and committed, before argon2
    runs; a right password then turns it into a success, committed too (whatever the caller
    does next, e.g. refuse the new password of a Change Password).
    """
    now = clock()
    assert account.id is not None  # read from the database
    _lock_password_checks(session, account.id)
    locked = lockout_remaining(session, account.id, now)
    if locked is not None:
        audit.record(
            session,
            action=action,
            actor=actor,
            account_id=account.id,
            outcome=audit.AuditOutcome.ERROR,
            reason="locked",
        )
        session.commit()
        return SignInResult(False, locked_for=locked)
    attempt = SignInAttempt(account_id=account.id, at=now, succeeded=False)
    session.add(attempt)
    session.commit()
    ok = password_matches(account.password_hash, password)
    if ok:
        attempt.succeeded = True
        session.add(attempt)
    audit.record(
        session,
        action=action,
        actor=actor,
        account_id=account.id,
        outcome=audit.AuditOutcome.OK if ok else audit.AuditOutcome.ERROR,
    )
    session.commit()
    if ok:
        return SignInResult(True)
    locked = lockout_remaining(session, account.id, now)
    if locked is not None:
        return SignInResult(False, locked_for=locked)
    recent = len(_failures_since(session, account.id, now - FAILURE_WINDOW))
    return SignInResult(False, attempts_left=max(MAX_FAILURES - recent, 0))


def sign_in(
    session: Session, account: Account, password: str, *, actor: str, clock: Clock = utcnow
) -> SignInResult:
    return verify_counted(
        session, account, password, actor=actor, action=audit.AuditAction.PAGE_SIGN_IN, clock=clock
    )


def set_password(
    session: Session,
    account: Account,
    password: str | None,
    *,
    actor: str,
    action: audit.AuditAction,
) -> None:
    """Set (or clear, with None) the page password; sessions signed in before are ended."""
    account.password_hash = hash_password(password) if password is not None else None
    account.session_epoch += 1
    account.updated_at = utcnow()
    session.add(account)
    audit.record(session, action=action, actor=actor, account_id=account.id)


def change_password(
    session: Session,
    account: Account,
    current: str,
    new: str,
    confirmation: str,
    *,
    actor: str,
    clock: Clock = utcnow,
) -> None:
    checked = verify_counted(
        session,
        account,
        current,
        actor=actor,
        action=audit.AuditAction.PAGE_CHANGE_PASSWORD,
        clock=clock,
    )
    if not checked.ok:
        raise PasswordRuleError(checked.refusal(_("The current password is incorrect.")))
    check_new_password(account, new, confirmation)
    set_password(session, account, new, actor=actor, action=audit.AuditAction.PAGE_CHANGE_PASSWORD)
