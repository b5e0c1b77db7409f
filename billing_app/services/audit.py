"""The append-only audit log: every mutation records who did what, when, and the outcome."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from billing_app.models import AuditLog

OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"


def record(
    session: Session,
    *,
    action: str,
    actor: str,
    account_id: int | None,
    outcome: str = OUTCOME_OK,
    **detail: Any,
) -> AuditLog:
    """Add an audit entry to the session (committed with the caller's transaction)."""
    entry = AuditLog(
        account_id=account_id,
        actor=actor,
        action=action,
        outcome=outcome,
        detail=json.dumps(detail, default=str, sort_keys=True),
    )
    session.add(entry)
    return entry
