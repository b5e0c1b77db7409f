"""The database engine and sessions for domain services (Reflex-free).

Reflex's own `rx.session()` reads the same URL through rxconfig; services use
this module so they can be used and tested without a Reflex app.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from billing_app.files import private_file
from billing_app.settings import get_settings


def make_engine(url: str, **options) -> Engine:
    """An engine with this app's connection settings; `options` go to `create_engine` (e.g.
    pool_size)."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if (
            database
            and database != ":memory:"
            and not database.startswith("file:")
            and Path(database).parent.is_dir()
        ):
            # SQLite would create it with the umask's mode; its -wal and -shm files copy this
            # file's.
            private_file(Path(database))
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **options
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            # WAL lets readers proceed while one writer commits; FKs are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of the app loses
            # nothing, a power cut may lose the last commits (Stripe keeps the money's truth; the
            # webhook re-sync restores it), and the database is never corrupted.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, **options)


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
