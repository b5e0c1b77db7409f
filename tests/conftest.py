"""Shared test set-up: every test run gets its own data directory and database.

TEST_DATABASE_URL names a PostgreSQL server (its database is only used to create
others): tests needing PostgreSQL get a fresh database there, dropped at the end.
With BILLING_TEST_PRODUCTION=1 (set by `make test` for its second pass when
TEST_DATABASE_URL and TEST_REDIS_URL are given) the whole run uses a fresh
database, Reflex state in that Redis, and several app workers.
"""

import atexit
import os
import tempfile
import uuid

import pytest

# The running app and the browser, shared by the end-to-end and the security tests (one of each per
# run).
pytest_plugins = ["tests.running_app"]

# Settings are read from the environment; point them at a throw-away place before
# any billing_app module is imported, and make sure a developer's real keys or .env
# never reach the tests.
_RUN_DIR = tempfile.mkdtemp(prefix="billing-tests-")
for _name in (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "BILLING_LAUNCH_SECRET",
    "REFLEX_REDIS_URL",
):
    os.environ.pop(_name, None)
os.environ["BILLING_DATA_DIR"] = _RUN_DIR
os.environ["DATABASE_URL"] = f"sqlite:///{_RUN_DIR}/billing.db"
# Ports of their own, so tests run beside a `make run` on the default ports.
os.environ["BILLING_PORT"] = os.environ.get("TEST_BILLING_PORT", "3107")
os.environ["LOCALSTRIPE_PORT"] = os.environ.get("TEST_LOCALSTRIPE_PORT", "8527")
os.environ.pop("BILLING_PUBLIC_URL", None)
# The end-to-end tests frame the page from this (fake) connector origin.
os.environ["BILLING_FRAME_ANCESTORS"] = "'self' http://connector.test"


def _use_fresh_postgres_database(server_url: str) -> str:
    """Create `billing_test_<random>` on the server of `server_url`, dropped when the run ends."""
    import sqlalchemy as sa

    name = f"billing_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from billing_app.db import get_engine

        get_engine().dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    atexit.register(drop)
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A fresh database on the TEST_DATABASE_URL server (never that URL's own database)."""
    server_url = os.environ.get("TEST_DATABASE_URL") or pytest.skip("TEST_DATABASE_URL is not set")
    return _use_fresh_postgres_database(server_url)


if os.environ.get("BILLING_TEST_PRODUCTION") == "1":
    os.environ["DATABASE_URL"] = _use_fresh_postgres_database(os.environ["TEST_DATABASE_URL"])
    os.environ["REFLEX_REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    os.environ.setdefault("GRANIAN_WORKERS", "3")
