"""When a signed-in tab of the Billing Page stops being signed in: the rules alone.

PageState (states/page.py) gathers the facts on every event of the tab and carries out the
verdict; here it is plain arithmetic on them, so each rule is tested without a browser or a
database.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from billing_app.services.accounts import SessionFacts
from billing_app.settings import Settings


class SessionVerdict(StrEnum):
    OK = "ok"
    # Signed out; the account has a password, so the tab asks for it again.
    ASK_PASSWORD = "ask_password"
    # Signed out with nothing to ask: only a new launch link opens the page again.
    DENY = "deny"


@dataclass(frozen=True)
class TabSignIn:
    """What the tab knows of its own sign-in (times in seconds since the epoch)."""

    signed_in_at: float
    last_activity: float
    # The account's session epoch when the tab signed in: a password change elsewhere bumps it.
    session_epoch: int


@dataclass(frozen=True)
class SessionLimits:
    idle_seconds: float
    lifetime_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> SessionLimits:
        return cls(
            settings.billing_session_idle_minutes * 60, settings.billing_session_max_hours * 3600
        )


def session_verdict(
    account: SessionFacts | None, tab: TabSignIn, limits: SessionLimits, now: float
) -> SessionVerdict:
    """Whether the tab's sign-in still holds for `account` (None: the account is gone)."""
    if account is None:
        return SessionVerdict.DENY
    expired = (
        now - tab.last_activity > limits.idle_seconds
        or now - tab.signed_in_at > limits.lifetime_seconds
    )
    if account.has_password and (expired or account.session_epoch != tab.session_epoch):
        return SessionVerdict.ASK_PASSWORD
    return SessionVerdict.DENY if expired else SessionVerdict.OK
