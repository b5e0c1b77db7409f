"""Stripe failures reduced to what a user may be shown (the details only go to the log)."""

from __future__ import annotations

import logging

import requests
import stripe

from billing_app.errors import MSG_BUSY, UserError
from billing_app.i18n import N_, _

log = logging.getLogger(__name__)

MSG_DECLINED = N_("Your card was declined.")
MSG_UNREACHABLE = N_("Payment service unreachable, nothing was changed. Please try again.")
MSG_TIMEOUT = N_("The payment service took too long to answer. Please try again in a moment.")
MSG_SERVICE_ERROR = N_("The payment service had a problem. Please try again.")
MSG_REFUSED = N_("The payment service refused this request. Nothing was changed.")
MSG_NOT_FOUND = N_("This billing record was not found at the payment service.")
MSG_MISCONFIGURED = N_("Payments are not configured correctly. Please contact support.")
MSG_REPLAYED = N_("This request was already sent with different details. Please reload the page.")
MSG_AUTHENTICATION_FAILED = N_("Your bank could not verify this payment. Nothing was charged.")

# Stripe card error codes and decline codes (https://docs.stripe.com/declines/codes).
_CARD_MESSAGES = {
    "insufficient_funds": N_("Your card has insufficient funds."),
    "expired_card": N_("Your card has expired."),
    "incorrect_number": N_("The card number is incorrect."),
    "invalid_number": N_("The card number is incorrect."),
    "incorrect_cvc": N_("The card's security code is incorrect."),
    "invalid_cvc": N_("The card's security code is incorrect."),
    "invalid_expiry_month": N_("The card's expiration date is invalid."),
    "invalid_expiry_year": N_("The card's expiration date is invalid."),
    "incorrect_zip": N_("The card's postal code is incorrect."),
    "authentication_required": N_("Your bank asks you to confirm this payment."),
    "payment_intent_authentication_failure": MSG_AUTHENTICATION_FAILED,
    "processing_error": N_("Your card could not be processed. Please try again."),
    "card_declined": MSG_DECLINED,
}
# Stripe's answer when an invoice's payment needs the customer (3-D Secure): not a failure.
ACTION_REQUIRED_CODES = frozenset(
    {
        "invoice_payment_intent_requires_action",
        "subscription_payment_intent_requires_action",
        "authentication_required",
    }
)


class GatewayError(UserError):
    """A Stripe failure, reduced to what a user may be shown.

    `code` is Stripe's error/decline code when there is one, else one of ours
    (`unreachable`, `timeout`, `rate_limited`, `resource_missing`,
    `resource_already_exists`, `api_error`, ...). `retryable` means the same
    request may succeed if simply sent again (with the same idempotency key);
    `outcome_unknown` means Stripe may have applied it (a timeout, a 5xx).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        retryable: bool = False,
        outcome_unknown: bool = False,
    ) -> None:
        # Translated into the locale of the event or request that met the failure.
        super().__init__(_(message), code)
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown


def card_message(code: str | None) -> str:
    """The user's words for a card error or decline code (a generic decline otherwise), in the
    current locale."""
    return _(_CARD_MESSAGES.get(code or "", MSG_DECLINED))


def user_message_for(exc: stripe.StripeError) -> GatewayError:
    """Map a Stripe exception to a GatewayError; the details only go to the log."""
    code: str | None = exc.code
    status = exc.http_status
    decline = exc.error.decline_code if exc.error is not None else None

    if code in ACTION_REQUIRED_CODES:
        log.info("Stripe asks for authentication: %r code=%s", exc, code)
        return GatewayError(card_message("authentication_required"), code="authentication_required")

    if isinstance(exc, stripe.CardError) or (
        isinstance(exc, stripe.InvalidRequestError) and code in _CARD_MESSAGES
    ):
        log.info("Stripe card error: %r code=%s decline_code=%s", exc, code, decline)
        key = next((c for c in (decline, code) if c in _CARD_MESSAGES), "card_declined")
        return GatewayError(_CARD_MESSAGES[key], code=key, retryable=key == "processing_error")

    if isinstance(exc, stripe.IdempotencyError):
        log.warning("Stripe refused a reused idempotency key: %r", exc)
        return GatewayError(MSG_REPLAYED, code="idempotency_error")

    if isinstance(exc, stripe.InvalidRequestError):  # often expected (a 404 probe)
        log.info("Stripe refused a request: %r code=%s", exc, code)
        if status == 404 or code == "resource_missing":
            return GatewayError(MSG_NOT_FOUND, code="resource_missing")
        return GatewayError(MSG_REFUSED, code=code or "invalid_request")

    if status == 409 and code is None and isinstance(exc, stripe.APIError):
        # localstripe answers a duplicate id with a bare 409 (real Stripe: 400
        # resource_already_exists; its own 409s, lock timeouts, carry a code).
        log.info("Stripe object already exists: %r", exc)
        return GatewayError(MSG_REFUSED, code="resource_already_exists")

    log.warning("Stripe call failed: %r code=%s", exc, code)
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, requests.exceptions.ReadTimeout):
            # The request may have been applied: do not claim nothing changed.
            return GatewayError(MSG_TIMEOUT, code="timeout", retryable=True, outcome_unknown=True)
        return GatewayError(MSG_UNREACHABLE, code="unreachable", retryable=True)
    if isinstance(exc, stripe.RateLimitError):
        return GatewayError(MSG_BUSY, code="rate_limited", retryable=True)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return GatewayError(MSG_MISCONFIGURED, code="authentication_error")
    if status == 409:
        return GatewayError(MSG_BUSY, code=code or "conflict", retryable=True)
    if status is not None and status < 500:  # e.g. a non-JSON 404 from localstripe
        return GatewayError(MSG_REFUSED, code=code or f"http_{status}")
    return GatewayError(
        MSG_SERVICE_ERROR, code=code or "api_error", retryable=True, outcome_unknown=True
    )
