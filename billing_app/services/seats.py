"""The seat ledger: which connector users hold one of an account's licenses.

A seat is an ActivatedUser row and "licenses used" is their count. Activation
adds the row with one conditional INSERT (only while fewer rows than
`Account.licenses_purchased` exist), so racing requests never oversubscribe:
- SQLite takes its single write lock at the start of a writing statement, so the
  count the INSERT reads is the count it writes against;
- PostgreSQL (READ COMMITTED) would let two transactions read the same count, so
  the account row is locked first (SELECT … FOR UPDATE): activations of one
  account queue behind each other, and each then sees the others' rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, select

from billing_app.i18n import _, ngettext
from billing_app.models import Account, ActivatedUser, core_table, utcnow
from billing_app.plans import Plan
from billing_app.services import audit, license_answers
from billing_app.services.accounts import api_key_hash_matches, hash_api_key, licenses_used
from billing_app.services.domains import domain_allowed, email_domain
from billing_app.services.emails import InvalidEmail, normalize_email
from billing_app.services.license_answers import CheckAnswer

PAGE_SIZE = 25
MAX_SEARCH_CHARS = 254


class Outcome(StrEnum):
    ACTIVATED = "activated"
    ALREADY_ACTIVE = "already_active"
    PLAN_REQUIRED = "plan_required"
    DOMAIN_NOT_ALLOWED = "domain_not_allowed"
    NO_FREE_LICENSE = "no_free_license"
    # Fewer licenses than users (e.g. Stripe's quantity was lowered): nobody new until resolved.
    USERS_EXCEED_LICENSES = "users_exceed_licenses"


LICENSED = {Outcome.ACTIVATED, Outcome.ALREADY_ACTIVE}


@dataclass(frozen=True)
class Activation:
    outcome: Outcome
    email: str
    licenses_used: int
    licenses_purchased: int
    plan: str = Plan.UNLIMITED  # the account's plan the outcome was decided on

    @property
    def licensed(self) -> bool:
        return self.outcome in LICENSED

    @property
    def message(self) -> str:
        """What the admin (User Management) and the connector (license API) are told."""
        domain = email_domain(self.email)
        match self.outcome:
            case Outcome.ACTIVATED:
                return _("%(email)s now uses a license.") % {"email": self.email}
            case Outcome.ALREADY_ACTIVE:
                return _("%(email)s already uses a license.") % {"email": self.email}
            case Outcome.PLAN_REQUIRED:
                return _(
                    "Licenses need the Unlimited Version: this account is on the free version."
                )
            case Outcome.DOMAIN_NOT_ALLOWED:
                return _(
                    "%(domain)s is not an email domain allowed to use licenses of this account."
                ) % {"domain": domain}
            case Outcome.USERS_EXCEED_LICENSES:
                over = self.licenses_used - self.licenses_purchased
                return _(
                    "%(exceeding)s: remove %(users)s or purchase more licenses before adding new "
                    "ones."
                ) % {
                    "exceeding": exceeding_licenses(self.licenses_used, self.licenses_purchased),
                    "users": ngettext("%(count)s user", "%(count)s users", over) % {"count": over},
                }
        return _(
            "No free license: all %(count)s are in use. Remove a user or purchase more licenses."
        ) % {"count": self.licenses_purchased}


def exceeding_licenses(used: int, purchased: int) -> str:
    """ "3 users are active but only 2 licenses are purchased"."""
    return _("%(users)s but only %(licenses)s") % {
        "users": ngettext("%(count)s user is active", "%(count)s users are active", used)
        % {"count": used},
        "licenses": ngettext(
            "%(count)s license is purchased", "%(count)s licenses are purchased", purchased
        )
        % {"count": purchased},
    }


def users_exceed_licenses(plan: str, used: int, purchased: int) -> bool:
    return plan == Plan.UNLIMITED and used > purchased


def over_licensed_notice(plan: str, used: int, purchased: int) -> str:
    """What the admin is told while more users hold a license than are purchased ("" if not)."""
    if not users_exceed_licenses(plan, used, purchased):
        return ""
    return _("%(exceeding)s: remove users in User Management or purchase more.") % {
        "exceeding": exceeding_licenses(used, purchased)
    }


def _lock_account(session: Session, account_id: int) -> Account:
    # FOR UPDATE serialises activations per account on PostgreSQL; SQLite has no row locks (its
    # write lock, taken by the INSERT, does the serialising). populate_existing: the caller may
    # hold this account already, read before the lock.
    statement = (
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.exec(statement).one()


def _holds_seat(account_id: int, email: str) -> sa.ColumnElement[bool]:
    return sa.and_(col(ActivatedUser.account_id) == account_id, col(ActivatedUser.email) == email)


def _is_active(session: Session, account_id: int, email: str) -> bool:
    return (
        session.exec(select(ActivatedUser.id).where(_holds_seat(account_id, email))).first()
        is not None
    )


def _insert_if_free(session: Session, account_id: int, email: str) -> bool:
    """Add the seat in one statement that re-counts the seats; False if none is free (or the email
    holds one)."""
    used = (
        select(sa.func.count())
        .select_from(ActivatedUser)
        .where(col(ActivatedUser.account_id) == account_id)
        .scalar_subquery()
    )
    purchased = select(Account.licenses_purchased).where(Account.id == account_id).scalar_subquery()
    row = sa.select(
        sa.literal(account_id, sa.Integer),
        sa.literal(email, sa.String),
        sa.literal(utcnow(), core_table(ActivatedUser).c.activated_at.type),
    ).where(used < purchased, ~sa.exists().where(_holds_seat(account_id, email)))
    inserted = session.execute(
        sa.insert(ActivatedUser)
        .from_select(["account_id", "email", "activated_at"], row)
        .returning(col(ActivatedUser.id))
    )
    if inserted.first() is None:
        return False
    license_answers.note_change(session, account_id)
    return True


def activate(session: Session, account_id: int, raw_email: object, *, actor: str) -> Activation:
    """Give the user a license if the plan, the domain and a free seat allow. Raises InvalidEmail.

    Idempotent: a user already holding a license is answered without a lock or a write
    (the connector repeats activations; nothing changes, so nothing is audited).
    """
    email = normalize_email(raw_email)
    account = session.get_one(Account, account_id)
    if account.plan == Plan.UNLIMITED and _is_active(session, account_id, email):
        return Activation(
            Outcome.ALREADY_ACTIVE,
            email,
            licenses_used(session, account_id),
            account.licenses_purchased,
            account.plan,
        )
    account = _lock_account(session, account_id)
    if account.plan != Plan.UNLIMITED:
        outcome = Outcome.PLAN_REQUIRED
    elif not domain_allowed(session, account, email_domain(email)):
        outcome = Outcome.DOMAIN_NOT_ALLOWED
    elif _insert_if_free(session, account_id, email):
        outcome = Outcome.ACTIVATED
    # A concurrent request for the same email won since the first look.
    elif _is_active(session, account_id, email):
        outcome = Outcome.ALREADY_ACTIVE
    elif licenses_used(session, account_id) > account.licenses_purchased:
        outcome = Outcome.USERS_EXCEED_LICENSES
    else:
        outcome = Outcome.NO_FREE_LICENSE
    activation = Activation(
        outcome, email, licenses_used(session, account_id), account.licenses_purchased, account.plan
    )
    if outcome != Outcome.ALREADY_ACTIVE:
        audit.record(
            session,
            action=audit.AuditAction.LICENSE_ACTIVATE,
            actor=actor,
            account_id=account_id,
            outcome=audit.AuditOutcome.OK if activation.licensed else audit.AuditOutcome.ERROR,
            email=email,
            result=outcome.value,
        )
    return activation


# The connector's check, the one hot path: answered from the process's cache of check answers
# (license_answers.py) when it can, else with one SQLAlchemy Core SELECT (the key's account and
# whether the user holds a seat) on a plain connection, built once. Measured with wrk on PostgreSQL
# + Redis, 2 workers, 1/10/50 connections, medians of 3 runs, load average 7–9 on 2 cores
# (docs/performance.md): 461/866/1,020 req/s like this, 277/454/473 req/s through the ORM (the
# account by its key, then the seat: two SELECTs and a Session). Activation stays in the ORM: at 50
# connections 111 req/s, p99 753 ms against 131 req/s, p99 588 ms in Core; the account lock holds
# both up.
_accounts, _users = core_table(Account), core_table(ActivatedUser)
_CHECK_BY_KEY = sa.select(
    _accounts.c.id,
    _accounts.c.plan,
    _accounts.c.api_key_hash,
    sa.exists()
    .where(_users.c.account_id == _accounts.c.id, _users.c.email == sa.bindparam("email"))
    .label("holds_seat"),
).where(_accounts.c.api_key_hash == sa.bindparam("api_key_hash"))


def cached_check(key: str, raw_email: str) -> CheckAnswer | None:
    """The connector's check from this process's cache; None when it has no answer (or the email
    is invalid: `check` says so, after the key)."""
    try:
        email = normalize_email(raw_email)
    except InvalidEmail:
        return None
    return license_answers.ANSWERS.answer(hash_api_key(key), email)


def check(connection: sa.Connection, key: str, raw_email: object) -> CheckAnswer | None:
    """The connector's check read from the database (and kept in the cache), None for an unknown
    key. Raises InvalidEmail, for a known key only."""
    try:
        email, invalid = normalize_email(raw_email), None
    except InvalidEmail as exc:
        email, invalid = "", exc
    key_hash = hash_api_key(key)
    generation = license_answers.ANSWERS.generation
    row = connection.execute(_CHECK_BY_KEY, {"email": email, "api_key_hash": key_hash}).first()
    if row is None or not api_key_hash_matches(row.api_key_hash, key_hash):
        return None
    if invalid is not None:
        raise invalid
    answer = CheckAnswer(row.id, row.plan, row.plan == Plan.UNLIMITED and bool(row.holds_seat))
    license_answers.ANSWERS.remember(key_hash, email, answer, generation)
    return answer


def _release_where(
    session: Session, account_id: int, condition: sa.ColumnElement[bool], *, actor: str
) -> list[str]:
    deleted = session.execute(
        sa.delete(ActivatedUser)
        .where(col(ActivatedUser.account_id) == account_id, condition)
        .returning(col(ActivatedUser.email))
    )
    emails = list(deleted.scalars())
    if emails:
        license_answers.note_change(session, account_id)
    for email in emails:
        audit.record(
            session,
            action=audit.AuditAction.LICENSE_RELEASE,
            actor=actor,
            account_id=account_id,
            email=email,
        )
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
            select(sa.func.count())
            .select_from(ActivatedUser)
            .where(ActivatedUser.account_id == account_id, _of_domain(domain))
        ).one()
        if count:
            counts[domain] = count
    return counts


def release_users_of_domains(
    session: Session, account: Account, domains: Iterable[str], *, actor: str
) -> int:
    """Release the users of domains that are no longer allowed (an allowed one is skipped); return
    how many."""
    no_longer_allowed = [
        domain for domain in domains if not domain_allowed(session, account, domain)
    ]
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


def list_users(
    session: Session,
    account_id: int,
    *,
    search: str = "",
    page: int = 0,
    page_size: int = PAGE_SIZE,
) -> UserPage:
    """One page of activated users, by email, optionally only those whose email contains
    `search`."""
    condition = col(ActivatedUser.account_id) == account_id
    needle = search.strip().lower()[:MAX_SEARCH_CHARS]
    if needle:
        condition = sa.and_(condition, col(ActivatedUser.email).contains(needle, autoescape=True))
    total = session.exec(select(sa.func.count()).select_from(ActivatedUser).where(condition)).one()
    page_count = max(1, math.ceil(total / page_size))
    page = min(max(page, 0), page_count - 1)
    rows = session.exec(
        select(ActivatedUser.email, ActivatedUser.activated_at)
        .where(condition)
        .order_by(ActivatedUser.email)
        .offset(page * page_size)
        .limit(page_size)
    )
    return UserPage([UserRow(email, at) for email, at in rows], total, page, page_count)
