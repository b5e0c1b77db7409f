"""Email domains allowed to use an account's licenses: normalising, validating, saving.

Domains are stored in their ASCII form (IDNA A-labels, lower-case), the form
email addresses are matched in. The admin's own domain is always allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import idna
from sqlmodel import Session, select

from billing_app.errors import ErrorCode, UserError
from billing_app.i18n import _
from billing_app.models import Account, AllowedDomain
from billing_app.services import audit

MAX_DOMAINS = 200
# Used with fullmatch (`$` would let a trailing newline through).
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# A top-level domain is letters, or an internationalised one in punycode.
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_SHOWN_INPUT_CHARS = 60


class InvalidDomain(UserError):
    """A domain the admin typed cannot be allowed; the message says why."""

    code = ErrorCode.INVALID_DOMAIN


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_INPUT_CHARS else text[:_SHOWN_INPUT_CHARS] + "…"


@lru_cache(maxsize=4096)  # on every license API call; an account's users share a few domains
def to_ascii_domain(name: str) -> str:
    """The lower-case ASCII form of a host name (IDNA for international names); raise
    InvalidDomain."""
    invalid = InvalidDomain(
        _("“%(domain)s” is not a valid domain. Enter one such as example.com.")
        % {"domain": _shown(name)}
    )
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except UnicodeError as exc:  # idna.IDNAError and its subclasses
        raise invalid from exc
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253 or not _TLD.fullmatch(labels[-1]):
        raise invalid
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise invalid
    return ascii_name


def normalize_domain(value: object) -> str:
    """What an admin typed as a domain ("  @Bücher.DE ") → its stored form ("xn--bcher-kva.de")."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidDomain(_("Enter a domain such as example.com."))
    text = value.strip().lstrip("@").strip()
    if "@" in text:
        raise InvalidDomain(
            _("“%(text)s” is an email address: enter only the part after @.")
            % {"text": _shown(text)}
        )
    return to_ascii_domain(text.removesuffix("."))


@lru_cache(maxsize=1)
def public_webmail_domains() -> frozenset[str]:
    text = (files("billing_app") / "data" / "webmail_domains.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def validate_domain_list(entries: Iterable[object], *, admin_domain: str) -> list[str]:
    """Normalise what the admin entered (blank entries are skipped); raise InvalidDomain on the
    first bad one."""
    domains: list[str] = []
    for entry in entries:
        if isinstance(entry, str) and not entry.strip():
            continue
        domain = normalize_domain(entry)
        if domain in domains:
            raise InvalidDomain(_("%(domain)s is listed twice.") % {"domain": domain})
        if domain in public_webmail_domains() and domain != admin_domain:
            raise InvalidDomain(
                _(
                    "%(domain)s is a public email provider: allowing it would let anyone use "
                    "your licenses."
                )
                % {"domain": domain}
            )
        domains.append(domain)
    if len(domains) > MAX_DOMAINS:
        raise InvalidDomain(_("At most %(count)s domains can be allowed.") % {"count": MAX_DOMAINS})
    return domains


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[1]


def admin_domain(account: Account) -> str:
    return email_domain(account.admin_email)


def allowed_domains(session: Session, account_id: int) -> list[str]:
    return list(
        session.exec(
            select(AllowedDomain.domain)
            .where(AllowedDomain.account_id == account_id)
            .order_by(AllowedDomain.domain)
        )
    )


def allowed_by_rule(domain: str, *, admin_email: str, listed: bool) -> bool:
    """The rule: the admin's own domain is always allowed, any other only when listed."""
    return listed or domain == email_domain(admin_email)


def domain_allowed(session: Session, account: Account, domain: str) -> bool:
    listed = (
        session.exec(
            select(AllowedDomain.id).where(
                AllowedDomain.account_id == account.id, AllowedDomain.domain == domain
            )
        ).first()
        is not None
    )
    return allowed_by_rule(domain, admin_email=account.admin_email, listed=listed)


@dataclass(frozen=True)
class DomainChange:
    added: list[str]
    removed: list[str]


def replace_domains(
    session: Session, account: Account, entries: Iterable[object], *, actor: str
) -> DomainChange:
    """Make the allowed domains exactly `entries` (plus the admin's own); nothing changes if one is
    invalid."""
    assert account.id is not None  # read from the database
    own = admin_domain(account)
    wanted = set(validate_domain_list(entries, admin_domain=own)) | {own}
    rows = {
        row.domain: row
        for row in session.exec(select(AllowedDomain).where(AllowedDomain.account_id == account.id))
    }
    added = sorted(wanted - rows.keys())
    removed = sorted(rows.keys() - wanted)
    for domain in removed:
        session.delete(rows[domain])
    session.add_all(AllowedDomain(account_id=account.id, domain=domain) for domain in added)
    if added or removed:
        audit.record(
            session,
            action=audit.AuditAction.DOMAINS_UPDATE,
            actor=actor,
            account_id=account.id,
            added=added,
            removed=removed,
        )
    return DomainChange(added=added, removed=removed)
