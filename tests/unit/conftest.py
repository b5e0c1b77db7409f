"""Unit-test fixtures: a migrated SQLite database, settings of their own and accounts, per test."""

import pytest
from sqlmodel import Session

from billing_app.db import make_engine
from billing_app.models import Account, ActivatedUser
from billing_app.plans import Plan
from billing_app.runner import migrate
from billing_app.services.accounts import create_account
from billing_app.settings import Settings


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path}/test.db"
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _add_unlimited_account(
    session: Session, slug: str, *, licenses: int, users: tuple[str, ...] = ()
) -> Account:
    account = create_account(
        session, slug=slug, name=slug.title(), admin_email=f"admin@{slug}.test", actor="test"
    )
    account.plan, account.licenses_purchased = Plan.UNLIMITED, licenses
    session.add_all(ActivatedUser(account_id=account.id, email=email) for email in users)
    session.commit()
    return account


@pytest.fixture
def add_unlimited_account():
    """add_unlimited_account(session, slug, licenses=n, users=(...)) → an account on the Unlimited
    Version, admin admin@<slug>.test, holding those users."""
    return _add_unlimited_account


@pytest.fixture
def settings(tmp_path):
    return Settings(_env_file=None, billing_data_dir=tmp_path, billing_port=3999)
