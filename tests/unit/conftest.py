"""Unit-test fixtures: a migrated SQLite database and settings of their own, per test."""

import pytest

from billing_app.db import make_engine
from billing_app.runner import migrate
from billing_app.settings import Settings


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path}/test.db"
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path):
    return Settings(_env_file=None, billing_data_dir=tmp_path, billing_port=3999)
