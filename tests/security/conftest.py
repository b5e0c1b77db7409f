"""Security-test fixtures: the run's own database (tests/conftest.py points the settings at it),
migrated."""

import uuid

import pytest

from billing_app.db import session_scope
from billing_app.models import ActivatedUser
from billing_app.plans import Plan
from billing_app.runner import migrate
from billing_app.services.accounts import create_account, issue_api_key
from billing_app.settings import get_settings


@pytest.fixture(scope="session")
def app_database() -> str:
    url = get_settings().database_url
    migrate(url)
    return url


@pytest.fixture
def seat_account(app_database):
    """seat_account(licenses=n, users=k) → (account id, its domain, its API key): an Unlimited
    account of the app's database, admin admin@<domain>, holding k users."""

    def make(licenses: int = 10, users: int = 0) -> tuple[int, str, str]:
        slug = f"sec-{uuid.uuid4().hex[:12]}"
        domain = f"{slug}.test"
        with session_scope() as session:
            account = create_account(
                session, slug=slug, name=slug, admin_email=f"admin@{domain}", actor="test"
            )
            account.plan, account.licenses_purchased = Plan.UNLIMITED, licenses
            session.add_all(
                ActivatedUser(account_id=account.id, email=f"user{i}@{domain}")
                for i in range(users)
            )
            key = issue_api_key(session, account, actor="test")
        return account.id, domain, key

    return make
