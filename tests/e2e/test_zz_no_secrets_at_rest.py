"""Runs last (file name): after the whole E2E run, no secret is in the database or the logs.

The secrets are the test card numbers typed into Stripe.js, the page passwords,
and every launch token handed out. localstripe's own store is emulator state
(it is Stripe, and keeps cards as Stripe does) and is not looked at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from billing_app.db import get_engine
from tests.e2e.helpers import ISSUED_SECRETS

pytestmark = pytest.mark.e2e

CARD_NUMBERS = ["4242424242424242", "4000000000000002", "5555555555554444", "4000002500003155"]


def _database_text() -> bytes:
    """Every row of every table as text (any engine), plus SQLite's raw file (free pages too)."""
    engine = get_engine()
    with engine.connect() as connection:
        rows = [repr(tuple(row)) for table in SQLModel.metadata.sorted_tables
                for row in connection.execute(sa.select(table))]
    text = "\n".join(rows).encode()
    if engine.url.get_backend_name() == "sqlite":
        database = engine.url.database
        files = [Path(database), Path(database + "-wal")]
        text += b"".join(path.read_bytes() for path in files if path.exists())
    return text


def test_database_and_logs_hold_no_secret(app_settings):
    logs = list((app_settings.billing_data_dir / "logs").glob("*.log"))
    assert {log.name for log in logs} >= {"app.log", "localstripe.log"}
    places = {"database": _database_text(), **{log.name: log.read_bytes() for log in logs}}
    assert b"Acme Corp" in places["database"]  # the dump really holds the data
    secrets = CARD_NUMBERS + ISSUED_SECRETS
    assert len(secrets) > len(CARD_NUMBERS)
    for place, content in places.items():
        for secret in secrets:
            assert secret.encode() not in content, f"{secret[:6]}… found in {place}"
