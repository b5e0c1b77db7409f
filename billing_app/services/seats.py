"""The seat ledger: which connector users hold one of an account's licenses.

A seat is an ActivatedUser row and "licenses used" is their count. Activation
adds the row with one conditional INSERT (only while fewer rows than
`Account.licenses_purchased` exist), so racing requests never oversubscribe:
- SQLite takes its single write lock at the start of a writing statement, so the
  count the INSERT reads is the count it writes against;
- PostgreSQL (READ COMMITTED) would let two transactions read the same count, so
  the account row is locked first (SELECT … FOR UPDATE): activations of one
  account queue behind each other, and each then sees the others' rows.

The license API's path is SQLAlchemy Core on a plain connection: one SELECT finds the
key's account and answers a check, or an activation of a user already holding a seat;
only a new activation writes (the INSERT, a count and its audit entry, in one transaction).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, select

from billing_app.models import (
    PLAN_UNLIMITED,
    Account,
    ActivatedUser,
    AllowedDomain,
    core_table,
    utcnow,
)
from billing_app.services import audit
from billing_app.services.accounts import HAS_API_KEY, api_key_hash_matches, hash_api_key
from billing_app.services.domains import allowed_by_rule, domain_allowed, email_domain
from billing_app.services.emails import InvalidEmail, normalize_email

PAGE_SIZE = 25
MAX_SEARCH_CHARS = 254


class Outcome(StrEnum):
    ACTIVATED = "activated"
    ALREADY_ACTIVE = "already_active"
    PLAN_REQUIRED = "plan_required"
    DOMAIN_NOT_ALLOWED = "domain_not_allowed"
    NO_FREE_LICENSE = "no_free_license"


LICENSED = {Outcome.ACTIVATED, Outcome.ALREADY_ACTIVE}


@dataclass(frozen=True)
class Activation:
    outcome: Outcome
    email: str
    licenses_used: int
    licenses_purchased: int
    plan: str = PLAN_UNLIMITED  # the account's plan the outcome was decided on

    @property
    def licensed(self) -> bool:
        return self.outcome in LICENSED

    @property
    def message(self) -> str:
        """What the admin (User Management) and the connector (license API) are told."""
        domain = email_domain(self.email)
        match self.outcome:
            case Outcome.ACTIVATED:
                return f"{self.email} now uses a license."
            case Outcome.ALREADY_ACTIVE:
                return f"{self.email} already uses a license."
            case Outcome.PLAN_REQUIRED:
                return "Licenses need the Unlimited Version: this account is on the free version."
            case Outcome.DOMAIN_NOT_ALLOWED:
                return f"{domain} is not an email domain allowed to use licenses of this account."
        over = self.licenses_used - self.licenses_purchased
        if over > 0:
            return (
                f"{self.licenses_used} users hold {self.licenses_purchased} licenses: "
                f"remove {over} {'user' if over == 1 else 'users'} before adding new ones."
            )
        return f"No free license: all {self.licenses_purchased} are in use. Remove a user or purchase more licenses."


# SQLAlchemy Core statements, built once: compiled once per dialect, then only executed. The
# license API runs them on a plain Connection (no ORM objects, no Session); the page's Session
# runs the same ones on its own connection.
_accounts, _users, _domains = core_table(Account), core_table(ActivatedUser), core_table(AllowedDomain)
_ACCOUNT_ID = sa.bindparam("account_id", type_=_users.c.account_id.type)
_EMAIL = sa.bindparam("email", type_=_users.c.email.type)
_DOMAIN = sa.bindparam("domain", type_=_domains.c.domain.type)
_NOW = sa.bindparam("now", type_=_users.c.activated_at.type)


def _holds_seat(account_id: sa.ColumnElement[int]) -> sa.Exists:
    return sa.exists().where(_users.c.account_id == account_id, _users.c.email == _EMAIL)


def _seats_used(account_id: sa.ColumnElement[int]) -> sa.ScalarSelect[int]:
    return sa.select(sa.func.count()).select_from(_users).where(_users.c.account_id == account_id).scalar_subquery()


_domain_listed = sa.exists().where(_domains.c.account_id == _accounts.c.id, _domains.c.domain == _DOMAIN)
_active = sa.and_(_accounts.c.plan == PLAN_UNLIMITED, _holds_seat(_accounts.c.id))

# The check: the key's account and whether the user holds a seat, in one SELECT.
_CHECK_BY_KEY = sa.select(
    _accounts.c.id, _accounts.c.plan, _accounts.c.api_key_hash, _active.label("active"),
).where(HAS_API_KEY)

# What an activation decides on, in one SELECT. The seats are counted only for a user who
# already holds one (CASE evaluates its branch lazily): that answer is then complete.
_FACTS_COLUMNS = (
    _accounts.c.id, _accounts.c.plan, _accounts.c.licenses_purchased, _accounts.c.admin_email,
    _active.label("active"), _domain_listed.label("domain_listed"),
    sa.case((_active, _seats_used(_accounts.c.id))).label("used_if_active"),
)
_FACTS_BY_KEY = sa.select(*_FACTS_COLUMNS, _accounts.c.api_key_hash).where(HAS_API_KEY)
_FACTS_BY_ID = sa.select(*_FACTS_COLUMNS).where(_accounts.c.id == _ACCOUNT_ID)

# FOR UPDATE serialises activations per account on PostgreSQL (read again under the lock);
# SQLite has no row locks: its write lock, taken by the INSERT, does the serialising.
_LOCK_ACCOUNT = (
    sa.select(_accounts.c.plan, _accounts.c.licenses_purchased, _accounts.c.admin_email,
              _domain_listed.label("domain_listed"))
    .where(_accounts.c.id == _ACCOUNT_ID).with_for_update(of=_accounts)
)

# Adds the seat in one statement that re-counts the seats: no row if none is free (or the email holds one).
_INSERT_IF_FREE = sa.insert(_users).from_select(
    ["account_id", "email", "activated_at"],
    sa.select(_ACCOUNT_ID, _EMAIL, _NOW).where(
        _seats_used(_ACCOUNT_ID)
        < sa.select(_accounts.c.licenses_purchased).where(_accounts.c.id == _ACCOUNT_ID).scalar_subquery(),
        ~_holds_seat(_ACCOUNT_ID),
    ),
).returning(_users.c.id)

_USED_AND_HELD = sa.select(_seats_used(_ACCOUNT_ID).label("used"), _holds_seat(_ACCOUNT_ID).label("held"))
_IS_ACTIVE = sa.select(_holds_seat(_ACCOUNT_ID))
@dataclass(frozen=True)
class Look:
    """An activation's first, read-only step: the account's facts, and the answer when it is already known."""

    account_id: int
    plan: str
    email: str
    licenses_purchased: int
    domain_allowed: bool
    answer: Activation | None  # set when the user already holds a license (nothing to write)


def _look(row: sa.Row, email: str) -> Look:
    answer = None
    if row.active:
        answer = Activation(Outcome.ALREADY_ACTIVE, email, row.used_if_active, row.licenses_purchased, row.plan)
    allowed = allowed_by_rule(email_domain(email), admin_email=row.admin_email, listed=bool(row.domain_listed))
    return Look(row.id, row.plan, email, row.licenses_purchased, allowed, answer)


def _params(email: str, **more: object) -> dict[str, object]:
    return {"email": email, "domain": email_domain(email) if email else "", **more}


def look_by_api_key(connection: sa.Connection, key: str, raw_email: object) -> Look | None:
    """One SELECT: the key's account and what an activation of the user needs; None for an unknown key.

    Raises InvalidEmail, but only for a known key (an unknown key is told so first).
    """
    email, invalid = _email_or_error(raw_email)
    key_hash = hash_api_key(key)
    row = connection.execute(_FACTS_BY_KEY, _params(email, api_key_hash=key_hash)).first()
    if row is None or not api_key_hash_matches(row.api_key_hash, key_hash):
        return None
    if invalid is not None:
        raise invalid
    return _look(row, email)


def check_by_api_key(connection: sa.Connection, key: str, raw_email: object) -> tuple[str, bool] | None:
    """The connector's check in one SELECT → (plan, licensed), None for an unknown key. Raises InvalidEmail (known key)."""
    email, invalid = _email_or_error(raw_email)
    key_hash = hash_api_key(key)
    row = connection.execute(_CHECK_BY_KEY, {"email": email, "api_key_hash": key_hash}).first()
    if row is None or not api_key_hash_matches(row.api_key_hash, key_hash):
        return None
    if invalid is not None:
        raise invalid
    return row.plan, bool(row.active)


def _email_or_error(raw_email: object) -> tuple[str, InvalidEmail | None]:
    try:
        return normalize_email(raw_email), None
    except InvalidEmail as exc:
        return "", exc


def activate_looked_up(connection: sa.Connection, look: Look, *, actor: str) -> Activation:
    """The writing step of an activation not answered by its look; the caller commits (one transaction)."""
    if look.answer is not None:
        return look.answer
    account_id, email = look.account_id, look.email
    plan, purchased, domain_allowed_ = look.plan, look.licenses_purchased, look.domain_allowed
    if connection.dialect.name != "sqlite":
        locked = connection.execute(_LOCK_ACCOUNT, _params(email, account_id=account_id)).one()
        plan, purchased = locked.plan, locked.licenses_purchased
        domain_allowed_ = allowed_by_rule(email_domain(email), admin_email=locked.admin_email,
                                          listed=bool(locked.domain_listed))
    if plan != PLAN_UNLIMITED:
        outcome = Outcome.PLAN_REQUIRED
    elif not domain_allowed_:
        outcome = Outcome.DOMAIN_NOT_ALLOWED
    elif connection.execute(_INSERT_IF_FREE, {"account_id": account_id, "email": email, "now": utcnow()}).first():
        outcome = Outcome.ACTIVATED
    else:
        outcome = None  # decided below: a concurrent request for the same email may have won since the look
    used, held = connection.execute(_USED_AND_HELD, {"account_id": account_id, "email": email}).one()
    if outcome is None:
        outcome = Outcome.ALREADY_ACTIVE if held else Outcome.NO_FREE_LICENSE
    activation = Activation(outcome, email, used, purchased, plan)
    if outcome != Outcome.ALREADY_ACTIVE:
        audit.record(connection, action="license.activate", actor=actor, account_id=account_id,
                     outcome=audit.OUTCOME_OK if activation.licensed else audit.OUTCOME_ERROR,
                     email=email, result=outcome.value)
    return activation


def activate(session: Session, account_id: int, raw_email: object, *, actor: str) -> Activation:
    """Give the user a license if the plan, the domain and a free seat allow. Raises InvalidEmail.

    Idempotent: a user already holding a license is answered from one SELECT, without a lock
    or a write (the connector repeats activations; nothing changes, so nothing is audited).
    The statements run on the session's connection, in its transaction.
    """
    email = normalize_email(raw_email)
    session.flush()  # the Core statements below see what the session changed
    connection = session.connection()
    row = connection.execute(_FACTS_BY_ID, _params(email, account_id=account_id)).one()
    return activate_looked_up(connection, _look(row, email), actor=actor)


def is_licensed(session: Session, account: Account, raw_email: object) -> bool:
    """The connector's check: an activated user of an account on the Unlimited Version. Raises InvalidEmail."""
    email = normalize_email(raw_email)
    return account.plan == PLAN_UNLIMITED and bool(
        session.execute(_IS_ACTIVE, {"account_id": account.id, "email": email}).scalar()
    )


def _release_where(session: Session, account_id: int, condition: sa.ColumnElement[bool], *, actor: str) -> list[str]:
    deleted = session.execute(
        sa.delete(ActivatedUser).where(col(ActivatedUser.account_id) == account_id, condition)
        .returning(col(ActivatedUser.email))
    )
    emails = list(deleted.scalars())
    for email in emails:
        audit.record(session, action="license.release", actor=actor, account_id=account_id, email=email)
    return emails


def release(session: Session, account_id: int, raw_email: object, *, actor: str) -> bool:
    """Free the user's license at once; False if they held none. Raises InvalidEmail."""
    email = normalize_email(raw_email)
    return bool(_release_where(session, account_id, col(ActivatedUser.email) == email, actor=actor))


def _of_domain(domain: str) -> sa.ColumnElement[bool]:
    return col(ActivatedUser.email).endswith("@" + domain, autoescape=True)


def users_of_domains(session: Session, account_id: int, domains: Iterable[str]) -> dict[str, int]:
    """How many activated users each domain has (domains without users are left out)."""
    counts = {}
    for domain in domains:
        count = session.exec(
            select(sa.func.count()).select_from(ActivatedUser)
            .where(ActivatedUser.account_id == account_id, _of_domain(domain))
        ).one()
        if count:
            counts[domain] = count
    return counts


def release_users_of_domains(session: Session, account: Account, domains: Iterable[str], *, actor: str) -> int:
    """Release the users of domains that are no longer allowed (an allowed one is skipped); return how many."""
    no_longer_allowed = [domain for domain in domains if not domain_allowed(session, account, domain)]
    if not no_longer_allowed:
        return 0
    condition = sa.or_(*(_of_domain(domain) for domain in no_longer_allowed))
    assert account.id is not None  # read from the database
    return len(_release_where(session, account.id, condition, actor=actor))


@dataclass(frozen=True)
class UserRow:
    email: str
    activated_at: datetime


@dataclass(frozen=True)
class UserPage:
    users: list[UserRow]
    total: int
    page: int  # 0-based, clamped to the pages that exist
    page_count: int


def list_users(session: Session, account_id: int, *, search: str = "", page: int = 0, page_size: int = PAGE_SIZE) -> UserPage:
    """One page of activated users, by email, optionally only those whose email contains `search`."""
    condition = col(ActivatedUser.account_id) == account_id
    needle = search.strip().lower()[:MAX_SEARCH_CHARS]
    if needle:
        condition = sa.and_(condition, col(ActivatedUser.email).contains(needle, autoescape=True))
    total = session.exec(select(sa.func.count()).select_from(ActivatedUser).where(condition)).one()
    page_count = max(1, math.ceil(total / page_size))
    page = min(max(page, 0), page_count - 1)
    rows = session.exec(
        select(ActivatedUser.email, ActivatedUser.activated_at)
        .where(condition).order_by(ActivatedUser.email).offset(page * page_size).limit(page_size)
    )
    return UserPage([UserRow(email, at) for email, at in rows], total, page, page_count)
