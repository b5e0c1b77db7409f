"""Accounts: creation, look-up, API keys and the launch-link handshake."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from billing_app.errors import ErrorCode, UserError
from billing_app.models import (
    Account,
    ActivatedUser,
    AllowedDomain,
    LaunchTokenUse,
    core_table,
    utcnow,
)
from billing_app.services import audit
from billing_app.services.emails import email_domain, normalize_email
from billing_app.services.launch_tokens import (
    InvalidLaunchToken,
    LaunchClaims,
    sign_launch_token,
    verify_launch_token,
)
from billing_app.settings import Settings

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
API_KEY_PREFIX = "cbk_"


class AccountError(UserError):
    """A request about accounts that cannot be done; the message is for the user."""

    code = ErrorCode.INVALID_ACCOUNT


class AccountNotFound(AccountError):
    code = ErrorCode.ACCOUNT_NOT_FOUND


def validate_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not _SLUG.fullmatch(slug):
        raise AccountError(
            "Account id must be 1-64 lower-case letters, digits or dashes (e.g. acme-corp)."
        )
    return slug


def get_account(session: Session, slug: str) -> Account:
    account = session.exec(select(Account).where(Account.slug == slug.strip().lower())).first()
    if account is None:
        raise AccountNotFound(f"No account {slug!r}.")
    return account


def create_account(
    session: Session, *, slug: str, name: str, admin_email: str, actor: str
) -> Account:
    slug = validate_slug(slug)
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise AccountError("Account name must be 1-200 characters.")
    admin_email = normalize_email(admin_email)
    if session.exec(select(Account.id).where(Account.slug == slug)).first() is not None:
        raise AccountError(f"Account {slug!r} already exists.")
    account = Account(slug=slug, name=name, admin_email=admin_email)
    session.add(account)
    session.flush()
    assert account.id is not None  # given by the flush
    # The admin's own domain is always allowed to use licenses.
    session.add(AllowedDomain(account_id=account.id, domain=email_domain(admin_email)))
    audit.record(
        session,
        action=audit.AuditAction.ACCOUNT_CREATE,
        actor=actor,
        account_id=account.id,
        slug=slug,
    )
    return account


def licenses_used(session: Session, account_id: int) -> int:
    return session.exec(
        select(sa.func.count())
        .select_from(ActivatedUser)
        .where(ActivatedUser.account_id == account_id)
    ).one()


def hash_api_key(key: str) -> str:
    # API keys are 256-bit random strings, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(key.encode()).hexdigest()


def issue_api_key(session: Session, account: Account, *, actor: str) -> str:
    """Create a new connector API key; only its hash is kept, so the old key stops working."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    account.api_key_hash = hash_api_key(key)
    account.updated_at = utcnow()
    session.add(account)
    audit.record(
        session, action=audit.AuditAction.ACCOUNT_API_KEY, actor=actor, account_id=account.id
    )
    return key


def api_key_hash_matches(stored_hash: str | None, key_hash: str) -> bool:
    """The constant-time comparison that decides whether a key is an account's (look-ups by hash
    only find it)."""
    return stored_hash is not None and hmac.compare_digest(stored_hash, key_hash)


def account_for_api_key(session: Session, key: str) -> Account | None:
    """The account whose connector API key this is, or None."""
    key_hash = hash_api_key(key)
    account = session.exec(select(Account).where(Account.api_key_hash == key_hash)).first()
    return (
        account
        if account is not None and api_key_hash_matches(account.api_key_hash, key_hash)
        else None
    )


@dataclass(frozen=True)
class SessionFacts:
    """What decides whether a signed-in page session still holds (see PageState)."""

    has_password: bool
    session_epoch: int

    @classmethod
    def of(cls, account: Account) -> SessionFacts:
        return cls(account.password_hash is not None, account.session_epoch)


_accounts = core_table(Account)
_SESSION_FACTS = sa.select(_accounts.c.password_hash.is_not(None), _accounts.c.session_epoch).where(
    _accounts.c.id == sa.bindparam("account_id")
)


def session_facts(connection: sa.Connection, account_id: int) -> SessionFacts | None:
    """The account's SessionFacts (None if it is gone): one narrow SELECT, made on every page
    event."""
    row = connection.execute(_SESSION_FACTS, {"account_id": account_id}).first()
    return None if row is None else SessionFacts(bool(row[0]), row[1])


def launch_url(
    settings: Settings, account: Account, email: str | None = None, locale: str | None = None
) -> str:
    """A launch link; `locale` ("en", "de") fixes the page's language, else the browser's."""
    token = sign_launch_token(
        settings.launch_secret,
        account=account.slug,
        email=normalize_email(email) if email else account.admin_email,
        ttl_seconds=settings.billing_launch_ttl_seconds,
        locale=locale,
    )
    return f"{settings.public_url}/?launch={token}"


def redeem_launch_token(
    session: Session, settings: Settings, token: str, *, already_bound_token_id: str | None = None
) -> tuple[Account, LaunchClaims]:
    """Check a launch token and mark it used; raise InvalidLaunchToken if it cannot open a page.

    A token opens the page once. Re-presenting the token a tab is already bound
    to (a reload before the URL was cleaned) is accepted.
    """
    claims = verify_launch_token(settings.launch_secret, token)
    account = session.exec(select(Account).where(Account.slug == claims.account)).first()
    if account is None:
        raise InvalidLaunchToken("unknown account")
    assert account.id is not None  # read from the database
    if claims.token_id == already_bound_token_id:
        return account, claims
    expires = datetime.fromtimestamp(claims.expires_at, UTC)
    # Old redemptions are useless once their token has expired. Deleted first: this write opens the
    # transaction, so the savepoint below nests in it and the redemption and its audit entry commit
    # together, once (SQLite's driver would commit a savepoint opened outside a transaction on
    # release).
    session.exec(sa.delete(LaunchTokenUse).where(col(LaunchTokenUse.expires_at) < utcnow()))
    try:
        with session.begin_nested():
            session.add(
                LaunchTokenUse(token_id=claims.token_id, account_id=account.id, expires_at=expires)
            )
    except IntegrityError as exc:
        raise InvalidLaunchToken("already used") from exc
    audit.record(
        session, action=audit.AuditAction.PAGE_LAUNCH, actor=claims.email, account_id=account.id
    )
    return account, claims
