"""Parsing of email addresses given by admins, the CLI and the connector."""

from __future__ import annotations

import re

# One address, no display name, no comments: local@domain with a dotted domain.
_EMAIL = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class InvalidEmail(ValueError):
    pass


def normalize_email(value: object) -> str:
    """Lower-case, strip and validate one email address; raise InvalidEmail otherwise."""
    if not isinstance(value, str):
        raise InvalidEmail("Enter one email address, such as name@example.com.")
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email) or ".." in email:
        raise InvalidEmail("Enter one email address, such as name@example.com.")
    return email


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[1]
