"""The license check's cache: what it answers, what drops an answer, and the change feed every
serving process follows."""

import asyncio
import threading

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from billing_app.models import LicenseChange
from billing_app.plans import Plan
from billing_app.services import license_answers, seats
from billing_app.services.accounts import hash_api_key, issue_api_key
from billing_app.services.license_answers import (
    MAX_AGE_SECONDS,
    MAX_LAG_SECONDS,
    AnswerCache,
    ChangeFeed,
    CheckAnswer,
)

ACME, GLOBEX = CheckAnswer(1, Plan.UNLIMITED, True), CheckAnswer(2, Plan.FREE, False)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cache(clock):
    cache = AnswerCache(max_answers=3, clock=clock)
    cache.feed_read(clock.now)
    return cache


def _remember(cache: AnswerCache, email: str, answer: CheckAnswer) -> None:
    cache.remember(f"key{answer.account_id}", email, answer, cache.generation)


def test_answers_only_while_the_feed_was_read_lately(clock):
    cache = AnswerCache(clock=clock)
    _remember(cache, "a@acme.test", ACME)
    assert cache.answer("key1", "a@acme.test") is None  # the feed was never read
    cache.feed_read(clock.now)
    assert cache.answer("key1", "a@acme.test") == ACME
    clock.now += MAX_LAG_SECONDS + 0.01
    assert cache.answer("key1", "a@acme.test") is None
    cache.feed_read(clock.now)
    assert cache.answer("key1", "a@acme.test") == ACME
    cache.feed_lost()
    cache.feed_read(clock.now)
    assert cache.answer("key1", "a@acme.test") is None  # a lost feed dropped everything


def test_an_answer_is_kept_at_most_max_age(cache, clock):
    _remember(cache, "a@acme.test", ACME)
    clock.now += MAX_AGE_SECONDS + 1
    cache.feed_read(clock.now)
    assert cache.answer("key1", "a@acme.test") is None


def test_forget_drops_only_that_accounts_answers(cache):
    _remember(cache, "a@acme.test", ACME)
    _remember(cache, "b@acme.test", ACME)
    _remember(cache, "g@globex.test", GLOBEX)
    cache.forget([1])
    assert cache.answer("key1", "a@acme.test") is None
    assert cache.answer("key1", "b@acme.test") is None
    assert cache.answer("key2", "g@globex.test") == GLOBEX
    cache.forget([license_answers.EVERY_ACCOUNT])
    assert len(cache) == 0


def test_a_read_that_raced_a_change_is_not_kept(cache):
    generation = cache.generation  # the read starts...
    cache.forget([1])  # ...a change of the account is committed meanwhile...
    cache.remember("key1", "a@acme.test", ACME, generation)  # ...and the read ends
    assert cache.answer("key1", "a@acme.test") is None


def test_the_least_recently_used_answer_goes_first(cache):
    for name in ("a", "b", "c"):
        _remember(cache, f"{name}@acme.test", ACME)
    assert cache.answer("key1", "a@acme.test") == ACME  # used: b is now the oldest
    _remember(cache, "d@acme.test", ACME)
    assert len(cache) == 3
    assert cache.answer("key1", "b@acme.test") is None
    assert cache.answer("key1", "a@acme.test") == ACME
    cache.forget([1])  # the account's index lost b with it: nothing left behind
    assert len(cache) == 0


# What notes a change, against a real (SQLite) database -----------------------------------------


@pytest.fixture
def session(engine):
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def acme(session, add_unlimited_account):
    return add_unlimited_account(session, "acme", licenses=3, users=("alice@acme.test",))


@pytest.fixture
def answers(monkeypatch, clock):
    """The process's cache, fresh for this test."""
    cache = AnswerCache(clock=clock)
    cache.feed_read(clock.now)
    monkeypatch.setattr(license_answers, "ANSWERS", cache)
    return cache


def _feed(session: Session) -> list[int | None]:
    return list(session.exec(select(LicenseChange.account_id).order_by(LicenseChange.id)))


def _cached_check(session, answers, account, email):
    """Read once from the database (so the answer is cached); the cached answer."""
    key = issue_api_key(session, account, actor="test")
    session.commit()
    seats.check(session.connection(), key, email)
    session.commit()
    assert answers.answer(hash_api_key(key), email) is not None
    return key


def test_a_committed_activation_drops_the_accounts_answers_and_is_in_the_feed(
    session, acme, answers
):
    key = _cached_check(session, answers, acme, "bob@acme.test")
    before = _feed(session)
    assert seats.activate(session, acme.id, "bob@acme.test", actor="test").licensed
    assert answers.answer(hash_api_key(key), "bob@acme.test") is not None  # not committed yet
    session.commit()
    assert answers.answer(hash_api_key(key), "bob@acme.test") is None
    assert _feed(session) == [*before, acme.id]
    assert seats.check(session.connection(), key, "bob@acme.test") == CheckAnswer(
        acme.id, Plan.UNLIMITED, True
    )


def test_a_rolled_back_change_drops_nothing(session, acme, answers):
    key = _cached_check(session, answers, acme, "alice@acme.test")
    before = _feed(session)
    seats.release(session, acme.id, "alice@acme.test", actor="test")
    session.rollback()
    assert answers.answer(hash_api_key(key), "alice@acme.test") is not None
    assert _feed(session) == before


@pytest.mark.parametrize(
    ("change", "noted"),
    [
        (lambda s, a: setattr(a, "plan", Plan.FREE), True),
        (lambda s, a: issue_api_key(s, a, actor="test"), True),
        (lambda s, a: seats.release(s, a.id, "alice@acme.test", actor="test"), True),
        (lambda s, a: setattr(a, "name", "Acme Inc."), False),
        (lambda s, a: setattr(a, "licenses_purchased", 9), False),
    ],
)
def test_what_changes_an_answer_is_noted(session, acme, answers, change, noted):
    before = _feed(session)
    change(session, acme)
    session.add(acme)
    session.commit()
    assert _feed(session) == before + [acme.id] * noted


def test_the_feed_tells_each_change_once(engine, session, acme):
    feed = ChangeFeed(engine)
    assert feed.read() == [license_answers.EVERY_ACCOUNT]  # at first, anything may have changed
    assert not feed.read()
    seats.release(session, acme.id, "alice@acme.test", actor="test")
    session.commit()
    assert feed.read() == {acme.id}
    assert not feed.read()


class UnreadableFeed(ChangeFeed):
    def read(self):
        raise sa.exc.OperationalError("SELECT …", {}, Exception("the database went away"))


def _follow(cache: AnswerCache, feed: ChangeFeed, seconds: float = 0.3) -> None:
    """The follower task for `seconds`, on an event loop of its own thread (this one may run
    another: Playwright's, in a whole-suite run)."""

    async def follow_for() -> None:
        task = asyncio.create_task(license_answers.follow_license_changes(cache, feed))
        await asyncio.sleep(seconds)
        task.cancel()

    thread = threading.Thread(target=asyncio.run, args=(follow_for(),))
    thread.start()
    thread.join()


def test_the_follower_keeps_the_cache_answering_until_the_feed_fails(engine):
    cache = AnswerCache()
    _follow(cache, ChangeFeed(engine))
    cache.remember("key1", "a@acme.test", ACME, cache.generation)
    assert cache.answer("key1", "a@acme.test") == ACME  # read within MAX_LAG_SECONDS
    _follow(cache, UnreadableFeed(engine))
    assert cache.answer("key1", "a@acme.test") is None
    assert len(cache) == 0
