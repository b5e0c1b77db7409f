"""End-to-end fixtures beside the running app and browser of tests/running_app.py: accounts to
drive, and the check, when the run ends, that no secret the tests handed out is in the database or
the logs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from billing_app.db import get_engine, session_scope
from billing_app.models import ActivatedUser
from billing_app.plans import Plan
from billing_app.services.accounts import create_account, issue_api_key
from billing_app.services.gateway import get_gateway
from billing_app.settings import Settings
from tests.e2e.helpers import ISSUED_SECRETS
from tests.running_app import ARTIFACTS

# The test cards typed into Stripe.js.
CARD_NUMBERS = ["4242424242424242", "4000000000000002", "5555555555554444", "4000002500003155"]
# Fixtures that hand out secrets (each adds them to ISSUED_SECRETS).
_ISSUING_FIXTURES = {"launch", "seat_account"}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def make_account(app_settings: Settings):
    """make_account(licenses=10) → slug of a new account, subscribed through Stripe when licenses >
    0."""
    from billing_app.models import Account
    from billing_app.services.billing import apply_card, apply_subscription
    from billing_app.services.seeding import subscribe_with_test_card

    def make(licenses: int = 0, *, card: str = "pm_card_visa", yearly: bool = False) -> str:
        slug = "e2e-" + uuid.uuid4().hex[:10]
        with session_scope() as session:
            account_id = create_account(
                session,
                slug=slug,
                name=f"Shop {slug[-4:]}",
                admin_email=f"boss@{slug}.test",
                actor="tests",
            ).id
        if licenses:
            card_summary, subscription = subscribe_with_test_card(
                get_gateway(), account_id, licenses, card=card, yearly=yearly
            )
            with session_scope() as session:
                account = session.get(Account, account_id)
                apply_subscription(account, subscription)
                apply_card(account, card_summary)
                session.add(account)
        return slug

    return make


@pytest.fixture
def seat_account(app_settings: Settings):
    """seat_account(licenses=10, users=2) → (slug, domain, API key) of a new account on the
    Unlimited Version with no Stripe objects (the license API and the User Management tab need
    none): admin admin@<domain>, users user1@<domain>…, so tests do not disturb the demo
    accounts."""

    def make(*, licenses: int = 10, users: int = 2) -> tuple[str, str, str]:
        slug = f"seats-{uuid.uuid4().hex[:10]}"
        domain = f"{slug}.test"
        with session_scope() as session:
            account = create_account(
                session,
                slug=slug,
                name=f"Seats {slug[-4:]}",
                admin_email=f"admin@{domain}",
                actor="test",
            )
            account.plan, account.licenses_purchased = Plan.UNLIMITED, licenses
            session.add_all(
                ActivatedUser(account_id=account.id, email=f"user{i}@{domain}")
                for i in range(1, users + 1)
            )
            key = issue_api_key(session, account, actor="test")
        ISSUED_SECRETS.append(key)
        return slug, domain, key

    return make


def _database_text() -> bytes:
    """Every row of every table as text (any engine), plus SQLite's raw file (free pages too)."""
    engine = get_engine()
    with engine.connect() as connection:
        rows = [
            repr(tuple(row))
            for table in SQLModel.metadata.sorted_tables
            for row in connection.execute(sa.select(table))
        ]
    text = "\n".join(rows).encode()
    if engine.url.get_backend_name() == "sqlite":
        database = engine.url.database
        files = [Path(database), Path(database + "-wal")]
        text += b"".join(path.read_bytes() for path in files if path.exists())
    return text


@pytest.fixture(scope="session", autouse=True)
def no_secrets_at_rest(request: pytest.FixtureRequest, app_settings: Settings):
    """When the run ends, no secret is in the database or the logs (a failure here fails the run).

    The secrets are the test card numbers typed into Stripe.js, the page passwords, and every
    launch token and API key handed out (`ISSUED_SECRETS`). localstripe's own store is emulator
    state (it is Stripe, and keeps cards as Stripe does) and is not looked at.
    """
    yield
    logs = list((app_settings.billing_data_dir / "logs").glob("*.log"))
    assert {log.name for log in logs} >= {"app.log", "localstripe.log"}
    places = {"database": _database_text(), **{log.name: log.read_bytes() for log in logs}}
    assert b"Acme Corp" in places["database"]  # the dump really holds the data
    if any(
        _ISSUING_FIXTURES & set(getattr(item, "fixturenames", ())) for item in request.session.items
    ):
        assert ISSUED_SECRETS, "tests handed out secrets, but none reached ISSUED_SECRETS"
    for place, content in places.items():
        for secret in CARD_NUMBERS + ISSUED_SECRETS:
            assert secret.encode() not in content, f"{secret[:6]}… found in {place}"
