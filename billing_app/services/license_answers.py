"""The license check's answers, kept in each serving process and dropped when they change.

The connector asks "is this user licensed?" far more often than an answer changes. Each process
keeps the answers it has read from the database (API key hash + email → plan, licensed) and drops
an account's answers once a change of that account is committed:
- in the process that committed it, at once (an `after_commit` hook);
- in every other process (the other workers, the CLI, the tests) through the `license_change`
  feed: each transaction that changes a check answer adds a row to it, in the same transaction,
  and every serving process reads the feed each POLL_SECONDS (`follow_license_changes`).
The cache answers only while its last read of the feed started less than MAX_LAG_SECONDS ago: a
change committed elsewhere is seen within that bound (0.5 s), and an answer is never older than
MAX_AGE_SECONDS (a change made by hand in SQL, outside the feed).

What changes an answer: the account's plan or API key (ORM changes, noted by an `after_flush` hook)
and its seats (`seats.py`'s statements call `note_change`).

Why a cache, measured with wrk on PostgreSQL + Redis, 2 workers, at 1/10/50 connections, in one
run against a bare Starlette endpoint (docs/performance.md): a check read from the database served
16/6/4 % of its requests (p99 437 ms at 50), most of it the hop to a worker thread and the round
trip; from this cache 57/43/42 % (p99 21 ms at 50). On SQLite, 1 worker: 41/13/7 % and 66/52/40 %.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, UOWTransaction
from sqlmodel import col, select

from billing_app.db import session_scope
from billing_app.models import Account, ActivatedUser, LicenseChange, core_table, utcnow

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
MAX_LAG_SECONDS = 0.5
MAX_AGE_SECONDS = 60.0
MAX_ANSWERS = 100_000  # about 200 bytes each
# Rows are read back this long after they were written: a transaction committing later than this
# after noting its change is missed by the other processes (their answers then wait for
# MAX_AGE_SECONDS); the notes are written at the end of their transactions.
FEED_WINDOW = timedelta(seconds=60)
FEED_KEPT = timedelta(hours=1)
PRUNE_EVERY_SECONDS = 600.0
_PENDING = "license_changes"  # Session.info key: the accounts this transaction changed
EVERY_ACCOUNT = None  # a feed row's account_id for "any account"


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    account_id: int
    plan: str
    licensed: bool


class AnswerCache:
    """Check answers by (API key hash, email), least recently used dropped past `max_answers`;
    thread-safe (the event loop reads, worker threads write and drop)."""

    def __init__(
        self, max_answers: int = MAX_ANSWERS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_answers, self._clock = max_answers, clock
        self._lock = threading.Lock()
        self._answers: OrderedDict[tuple[str, str], tuple[CheckAnswer, float]] = OrderedDict()
        self._keys_of_account: dict[int, set[tuple[str, str]]] = {}
        self._generation = 0
        self._fresh_until = float("-inf")

    @property
    def generation(self) -> int:
        """Taken before a database read: `remember` drops the answer if anything was dropped
        since (the read may predate that change)."""
        return self._generation

    def answer(self, key_hash: str, email: str) -> CheckAnswer | None:
        now = self._clock()
        if now > self._fresh_until:
            return None
        with self._lock:
            found = self._answers.get((key_hash, email))
            if found is None or now - found[1] > MAX_AGE_SECONDS:
                return None
            self._answers.move_to_end((key_hash, email))
        return found[0]

    def remember(self, key_hash: str, email: str, answer: CheckAnswer, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            key = (key_hash, email)
            self._answers[key] = (answer, self._clock())
            self._answers.move_to_end(key)
            self._keys_of_account.setdefault(answer.account_id, set()).add(key)
            while len(self._answers) > self._max_answers:
                old_key, (old, _) = self._answers.popitem(last=False)
                self._keys_of_account[old.account_id].discard(old_key)

    def forget(self, account_ids: Iterable[int | None]) -> None:
        """Drop the answers of these accounts (None: of every account)."""
        with self._lock:
            self._generation += 1
            for account_id in account_ids:
                if account_id is None:  # EVERY_ACCOUNT
                    self._answers.clear()
                    self._keys_of_account.clear()
                    return
                for key in self._keys_of_account.pop(account_id, ()):
                    self._answers.pop(key, None)

    def feed_read(self, started: float) -> None:
        """Every change committed before `started` has been applied: answer until MAX_LAG later."""
        self._fresh_until = started + MAX_LAG_SECONDS

    def feed_lost(self) -> None:
        """The feed cannot be read: answer nothing until it is read again."""
        self._fresh_until = float("-inf")
        self.forget([EVERY_ACCOUNT])

    def __len__(self) -> int:
        return len(self._answers)


ANSWERS = AnswerCache()


# Noting changes -----------------------------------------------------------------------------


def note_change(session: Session, account_id: int | None) -> None:
    """Record, in the session's transaction, that the account's check answers change."""
    session.connection().execute(
        sa.insert(core_table(LicenseChange)).values(account_id=account_id, changed_at=utcnow())
    )
    session.info.setdefault(_PENDING, set()).add(account_id)


_ANSWER_COLUMNS = ("plan", "api_key_hash")


def _accounts_changed_by_flush(session: Session) -> set[int | None]:
    """The accounts whose answers the rows being flushed change (the session still lists them,
    with each column's history, in after_flush)."""
    changed: set[int | None] = set()
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, ActivatedUser):
            changed.add(row.account_id)
        elif isinstance(row, Account) and row not in session.new:  # a new key was never answered
            state = sa.inspect(row)
            if row in session.deleted or any(
                state.attrs[name].history.has_changes() for name in _ANSWER_COLUMNS
            ):
                changed.add(row.id)
    return changed


@event.listens_for(Session, "after_flush")
def _note_flushed_changes(session: Session, _flush: UOWTransaction) -> None:
    for account_id in _accounts_changed_by_flush(session):
        note_change(session, account_id)


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    changed: set[int | None] = session.info.pop(_PENDING, set())
    if changed:
        ANSWERS.forget(changed)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


# Following the feed ----------------------------------------------------------------------------


class ChangeFeed:
    """Reads the feed's recent rows; each read returns the accounts changed since the last one."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._engine = engine  # None: the app's
        self._seen: set[int] | None = None  # row ids inside the window; None: nothing read yet
        self._pruned_at = float("-inf")

    def read(self) -> Collection[int | None]:
        """The accounts changed since the last read; [None] (every account) at the first read."""
        with session_scope(self._engine) as session:
            rows = session.exec(
                select(LicenseChange.id, LicenseChange.account_id).where(
                    col(LicenseChange.changed_at) > utcnow() - FEED_WINDOW
                )
            ).all()
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_SECONDS:
                self._pruned_at = time.monotonic()
                session.execute(
                    sa.delete(LicenseChange).where(
                        col(LicenseChange.changed_at) < utcnow() - FEED_KEPT
                    )
                )
        seen, self._seen = self._seen, {row_id for row_id, _ in rows if row_id is not None}
        if seen is None:
            return [EVERY_ACCOUNT]
        return {account_id for row_id, account_id in rows if row_id not in seen}

    def restart(self) -> None:
        self._seen = None


async def follow_license_changes(
    answers: AnswerCache = ANSWERS, feed: ChangeFeed | None = None
) -> None:
    """The serving process's task: read the feed each POLL_SECONDS, drop what changed."""
    feed = feed or ChangeFeed()
    while True:
        started = time.monotonic()
        try:
            changed = await asyncio.to_thread(feed.read)
        except Exception:
            log.exception("The license changes feed could not be read: check answers uncached")
            answers.feed_lost()
            feed.restart()
        else:
            if changed:
                answers.forget(changed)
            answers.feed_read(started)
        await asyncio.sleep(POLL_SECONDS)
