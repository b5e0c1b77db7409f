"""The append-only audit log: every mutation records who did what, when, and the outcome."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from billing_app.models import AuditLog, core_table, utcnow

OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"
_INSERT = sa.insert(core_table(AuditLog))


def record(
    db: Session | sa.Connection,
    *,
    action: str,
    actor: str,
    account_id: int | None,
    outcome: str = OUTCOME_OK,
    **detail: Any,
) -> None:
    """Insert an audit entry in the caller's transaction (a Session's or a Core connection's).

    A Core INSERT, not an ORM object: it is on every mutation's path, and nothing reads it back.
    """
    connection = db.connection() if isinstance(db, Session) else db
    connection.execute(
        _INSERT,
        {
            "at": utcnow(),
            "account_id": account_id,
            "actor": actor,
            "action": action,
            "outcome": outcome,
            "detail": json.dumps(detail, default=str, sort_keys=True),
        },
    )
