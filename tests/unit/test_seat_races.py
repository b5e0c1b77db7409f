"""Racing activations never oversubscribe an account: SQLite always, PostgreSQL with
TEST_DATABASE_URL.

Both ways in race: the page's (`seats.activate` for an account id) and the license API's
(the account found by its API key, then `seats.activate`, in one session).

With TEST_DATABASE_URL (a PostgreSQL server, postgresql+psycopg://…) the races also run
in a fresh database created there for the test run.
"""

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import Session

from billing_app.db import make_engine, session_scope
from billing_app.runner import migrate
from billing_app.services import seats
from billing_app.services.accounts import account_for_api_key, issue_api_key, licenses_used
from billing_app.services.seats import Outcome

RACERS = 48
PURCHASED = 10
HELD = 7  # so RACERS requests race for the last PURCHASED - HELD licenses


@pytest.fixture(params=["sqlite", "postgresql"])
def race_engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/race.db"
    else:
        url = request.getfixturevalue("postgres_url")
    migrate(url)
    # One connection per racer, so they really run at once.
    engine = make_engine(url, pool_size=RACERS, max_overflow=0)
    yield engine
    engine.dispose()


def _as_the_page(engine, account_id: int, _key: str, email: str) -> Outcome:
    with session_scope(engine) as session:
        return seats.activate(session, account_id, email, actor="race").outcome


def _as_the_api(engine, _account_id: int, key: str, email: str) -> Outcome:
    with session_scope(engine) as session:
        account = account_for_api_key(session, key)
        assert account is not None and account.id is not None
        return seats.activate(session, account.id, email, actor="race").outcome


@pytest.fixture(params=[_as_the_page, _as_the_api], ids=["page", "api"])
def way(request):
    return request.param


def _race(engine, way, account: tuple[int, str, str], emails: list[str]) -> Counter:
    account_id, _domain, key = account
    start = threading.Barrier(len(emails))

    def activate(email: str) -> Outcome:
        start.wait()
        return way(engine, account_id, key, email)

    with ThreadPoolExecutor(max_workers=len(emails)) as pool:
        return Counter(pool.map(activate, emails))


def _account(engine, add_unlimited_account) -> tuple[int, str, str]:
    """A new account holding HELD of its PURCHASED licenses; returns its id, its (allowed) domain,
    its API key."""
    slug = f"race-{uuid.uuid4().hex[:12]}"
    domain = f"{slug}.test"
    with Session(engine) as session:
        held = tuple(f"held{i}@{domain}" for i in range(HELD))
        account = add_unlimited_account(session, slug, licenses=PURCHASED, users=held)
        key = issue_api_key(session, account, actor="test")
        session.commit()
        return account.id, domain, key


def test_racing_activations_get_exactly_the_free_licenses(race_engine, way, add_unlimited_account):
    account = account_id, domain, _key = _account(race_engine, add_unlimited_account)
    outcomes = _race(race_engine, way, account, [f"user{i}@{domain}" for i in range(RACERS)])
    assert outcomes == {
        Outcome.ACTIVATED: PURCHASED - HELD,
        Outcome.NO_FREE_LICENSE: RACERS - (PURCHASED - HELD),
    }
    with Session(race_engine) as session:
        assert licenses_used(session, account_id) == PURCHASED


def test_racing_activations_of_one_user_take_one_license(race_engine, way, add_unlimited_account):
    account = account_id, domain, _key = _account(race_engine, add_unlimited_account)
    outcomes = _race(race_engine, way, account, [f"same@{domain}"] * RACERS)
    assert outcomes == {Outcome.ACTIVATED: 1, Outcome.ALREADY_ACTIVE: RACERS - 1}
    with Session(race_engine) as session:
        assert licenses_used(session, account_id) == HELD + 1
