"""Runs last (file name): after the whole E2E run, no secret is in the database or the logs.

The secrets are the test card numbers typed into Stripe.js, the page passwords,
and every launch token handed out. localstripe's own store is emulator state
(it is Stripe, and keeps cards as Stripe does) and is not looked at.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ISSUED_SECRETS

pytestmark = pytest.mark.e2e

CARD_NUMBERS = ["4242424242424242", "4000000000000002", "5555555555554444", "4000002500003155"]


def test_database_and_logs_hold_no_secret(app_settings):
    data_dir = app_settings.billing_data_dir
    files = [p for p in data_dir.glob("billing.db*")] + list((data_dir / "logs").glob("*.log"))
    assert any(p.name == "billing.db" for p in files) and any(p.suffix == ".log" for p in files)
    secrets = CARD_NUMBERS + ISSUED_SECRETS
    assert len(secrets) > len(CARD_NUMBERS)
    for path in files:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, f"{secret[:6]}… found in {path.name}"
