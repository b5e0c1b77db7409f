"""Parsing of email addresses given by admins, the CLI and the connector."""

from __future__ import annotations

import re

from billing_app.errors import ErrorCode, UserError
from billing_app.i18n import N_, _
from billing_app.services.domains import InvalidDomain, email_domain, to_ascii_domain

__all__ = ["InvalidEmail", "email_domain", "normalize_email"]

# The local part as the connector's users have it: one dot-atom, no quotes, no comments.
# Always fullmatch: `$` also matches before a final newline ("alice\n" would be a second seat).
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_MESSAGE = N_("Enter one email address, such as name@example.com.")


class InvalidEmail(UserError):
    code = ErrorCode.INVALID_EMAIL


def normalize_email(value: object) -> str:
    """Lower-case, strip and validate one email address (IDNA for the domain); raise InvalidEmail
    otherwise."""
    if not isinstance(value, str) or len(value) > 1000:
        raise InvalidEmail(_(_MESSAGE))
    local, at, domain = value.strip().lower().rpartition("@")
    if not at or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise InvalidEmail(_(_MESSAGE))
    try:
        email = f"{local}@{to_ascii_domain(domain)}"
    except InvalidDomain as exc:
        raise InvalidEmail(_(_MESSAGE)) from exc
    if len(email) > 254:
        raise InvalidEmail(_(_MESSAGE))
    return email
