"""Stripe test mode (the real API, test keys): run by `make test-stripe` when
STRIPE_TEST_SECRET_KEY and STRIPE_TEST_PUBLISHABLE_KEY are set; skipped otherwise."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from billing_app.settings import Settings
from billing_app.stripe.client import StripeClient

SECRET = os.environ.get("STRIPE_TEST_SECRET_KEY", "")
PUBLISHABLE = os.environ.get("STRIPE_TEST_PUBLISHABLE_KEY", "")

CONFIGURED = SECRET.startswith("sk_test_") and PUBLISHABLE.startswith("pk_test_")
SKIP_REASON = (
    "Stripe test mode: set STRIPE_TEST_SECRET_KEY and STRIPE_TEST_PUBLISHABLE_KEY (test keys) to "
    "run"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CONFIGURED:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def stripe_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("stripe-test-mode")
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        stripe_secret_key=SECRET,
        stripe_publishable_key=PUBLISHABLE,
        stripe_webhook_secret="whsec_unused_by_these_tests",
        database_url=f"sqlite:///{data_dir}/billing.db",
        billing_data_dir=data_dir,
    )


@pytest.fixture(scope="session")
def client(stripe_settings: Settings) -> StripeClient:
    return StripeClient(stripe_settings)


@pytest.fixture
def key() -> str:
    return uuid.uuid4().hex
