"""What a user is told when something cannot be done: one exception type for every entry point.

Every exception whose text reaches a person derives from `UserError`: the page shows `message`,
the license API answers `{"error": code, "message": message}`, the CLI prints `message`. Code
decides on `code` or on the class, never on the text.
"""

from __future__ import annotations

from enum import StrEnum

from billing_app.i18n import N_


class ErrorCode(StrEnum):
    """Our own codes (a Stripe failure carries Stripe's code, see stripe/errors.py)."""

    BUSY = "busy"
    IN_PROGRESS = "in_progress"
    STALE_PAGE = "stale_page"
    PREVIEW_EXPIRED = "preview_expired"
    EXPIRED_FORM = "expired_form"
    ACCOUNT_MISSING = "account_missing"
    ACCOUNT_NOT_FOUND = "account_not_found"
    INVALID_ACCOUNT = "invalid_account"
    INVALID_LICENSE_COUNT = "invalid_license_count"
    INVALID_INTERVAL = "invalid_interval"
    INVALID_FEEDBACK = "invalid_feedback"
    INVALID_EMAIL = "invalid_email"
    INVALID_DOMAIN = "invalid_domain"
    INVALID_PASSWORD = "invalid_password"
    INVALID_BILLING_DETAILS = "invalid_billing_details"
    NO_SUBSCRIPTION = "no_subscription"
    ALREADY_UNLIMITED = "already_unlimited"
    ALREADY_YEARLY = "already_yearly"
    ALREADY_CANCELLING = "already_cancelling"
    NOT_CANCELLING = "not_cancelling"
    NOT_FEWER_LICENSES = "not_fewer_licenses"
    LICENSES_IN_USE = "licenses_in_use"
    ALREADY_MONTHLY = "already_monthly"
    CHANGE_SCHEDULED = "change_scheduled"
    NOTHING_SCHEDULED = "nothing_scheduled"
    CARD_NOT_CONFIRMED = "card_not_confirmed"
    PAYMENT_FAILED = "payment_failed"
    AUTHENTICATION_FAILED = "authentication_failed"
    NOTHING_TO_AUTHENTICATE = "nothing_to_authenticate"
    COMMAND_FAILED = "command_failed"
    PORT_IN_USE = "port_in_use"


# One text per meaning, wherever it is said (in English; `_()` where a page shows it).
MSG_ACCOUNT_MISSING = N_("This account no longer exists.")
MSG_BUSY = N_(
    "Another request is being processed, nothing was changed. Please try again in a moment."
)


class UserError(Exception):
    """Something that cannot be done, said to the user: `message` is the text shown, `code` a short
    machine-readable reason. A subclass names its usual code; a raise may give a more precise one.
    """

    code: str  # each subclass names its usual one

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
