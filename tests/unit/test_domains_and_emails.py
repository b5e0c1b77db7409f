"""Allowed email domains and email addresses: normalisation and validation."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from billing_app.models import AllowedDomain, AuditLog
from billing_app.services import domains
from billing_app.services.domains import InvalidDomain, normalize_domain, validate_domain_list
from billing_app.services.emails import InvalidEmail, normalize_email


@pytest.mark.parametrize(
    "raw, domain",
    [
        ("acme.com", "acme.com"),
        ("  ACME.Com ", "acme.com"),
        ("@acme.com", "acme.com"),
        (" @ Sub.Acme.co.uk", "sub.acme.co.uk"),
        ("acme.com.", "acme.com"),
        ("Bücher.DE", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("例え.jp", "xn--r8jz45g.jp"),
        ("my-company.io", "my-company.io"),
        ("münchen.xn--p1ai", "xn--mnchen-3ya.xn--p1ai"),
    ],
)
def test_domains_are_normalised(raw, domain):
    assert normalize_domain(raw) == domain


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "@",
        "acme",
        "localhost",
        "acme..com",
        ".acme.com",
        "-acme.com",
        "acme-.com",
        "acme.c",
        "acme.123",
        "a_b.com",
        "acme com",
        "acme.com/x",
        "https://acme.com",
        "*.acme.com",
        "bob@acme.com",
        "acme.com,beta.com",
        "x" * 64 + ".com",
        ".".join(["a" * 60] * 5) + ".com",
        "xn--zz.com",
        None,
        42,
        ["acme.com"],
    ],
)
def test_invalid_domains_are_refused(raw):
    with pytest.raises(InvalidDomain):
        normalize_domain(raw)


def test_messages_name_the_entry_without_echoing_huge_input():
    with pytest.raises(InvalidDomain, match="is not a valid domain") as caught:
        normalize_domain("not a domain " * 100)
    assert len(str(caught.value)) < 150
    with pytest.raises(InvalidDomain, match="email address"):
        normalize_domain("bob@acme.com")


def test_list_refuses_duplicates_and_public_webmail_but_skips_blanks():
    assert validate_domain_list(["acme.com", " ", "", "Beta.io"], admin_domain="acme.com") == [
        "acme.com",
        "beta.io",
    ]
    with pytest.raises(InvalidDomain, match="acme.com is listed twice"):
        validate_domain_list(["acme.com", "@ACME.com"], admin_domain="acme.com")
    for webmail in ("gmail.com", "Outlook.com", "@yahoo.co.uk"):
        with pytest.raises(InvalidDomain, match="public email provider"):
            validate_domain_list(["acme.com", webmail], admin_domain="acme.com")
    # The admin's own domain is always allowed, even a webmail one.
    assert validate_domain_list(["gmail.com"], admin_domain="gmail.com") == ["gmail.com"]
    with pytest.raises(InvalidDomain, match="At most"):
        validate_domain_list(
            [f"d{i}.com" for i in range(domains.MAX_DOMAINS + 1)], admin_domain="acme.com"
        )


def test_webmail_list_is_normalised_data():
    listed = domains.public_webmail_domains()
    assert {"gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com"} <= listed
    assert all(normalize_domain(domain) == domain for domain in listed)


def test_replace_domains_saves_exactly_the_list_and_keeps_the_admin_domain(
    engine, add_unlimited_account
):
    with Session(engine) as session:
        account = add_unlimited_account(session, "acme", licenses=5)
        change = domains.replace_domains(
            session, account, ["Beta.io", "@gamma.org"], actor="admin@acme.test"
        )
        session.commit()
        assert (change.added, change.removed) == (["beta.io", "gamma.org"], [])
        assert domains.allowed_domains(session, account.id) == ["acme.test", "beta.io", "gamma.org"]
        change = domains.replace_domains(session, account, ["gamma.org"], actor="admin@acme.test")
        session.commit()
        assert (change.added, change.removed) == ([], ["beta.io"])
        assert domains.allowed_domains(session, account.id) == ["acme.test", "gamma.org"]
        entries = session.exec(select(AuditLog).where(AuditLog.action == "domains.update")).all()
        assert len(entries) == 2 and '"removed": ["beta.io"]' in entries[1].detail
        # Saving the same list again changes and records nothing.
        domains.replace_domains(session, account, ["gamma.org"], actor="admin@acme.test")
        assert (
            len(session.exec(select(AuditLog).where(AuditLog.action == "domains.update")).all())
            == 2
        )


def test_an_invalid_entry_saves_nothing(engine, add_unlimited_account):
    with Session(engine) as session:
        account = add_unlimited_account(session, "acme", licenses=5)
        with pytest.raises(InvalidDomain):
            domains.replace_domains(
                session, account, ["beta.io", "gmail.com"], actor="admin@acme.test"
            )
        session.rollback()
        assert session.exec(select(AllowedDomain.domain)).all() == ["acme.test"]


def test_admin_domain_is_allowed_without_a_row(engine, add_unlimited_account):
    with Session(engine) as session:
        account = add_unlimited_account(session, "acme", licenses=5)
        session.exec(AllowedDomain.__table__.delete())
        assert domains.domain_allowed(session, account, "acme.test")
        assert not domains.domain_allowed(session, account, "other.test")


@pytest.mark.parametrize(
    "raw, email",
    [
        ("bob@Bücher.de", "bob@xn--bcher-kva.de"),
        ("\tBob.Smith+tag@Acme.COM\n", "bob.smith+tag@acme.com"),
    ],
)
def test_emails_take_the_domain_in_ascii_form(raw, email):
    assert normalize_email(raw) == email


@pytest.mark.parametrize(
    "raw",
    [
        ".bob@acme.com",
        "bob.@acme.com",
        "bob@acme.com.",
        "bob@@acme.com",
        "b\u00f6b@acme.com",
        "x" * 2000,
    ],
)
def test_more_non_addresses_are_refused(raw):
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=20)
_domain = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_label, min_size=1, max_size=3),
    st.text(string.ascii_lowercase, min_size=2, max_size=6),
)
_local = st.text(string.ascii_lowercase + string.digits + "+_-", min_size=1, max_size=30)


@given(_domain, st.sampled_from(["", " ", "@", " @ ", "\t"]), st.booleans())
def test_property_dressing_up_a_domain_does_not_change_it(domain, prefix, shout):
    raw = prefix + (domain.upper() if shout else domain) + " "
    assert normalize_domain(raw) == domain
    assert normalize_domain(normalize_domain(raw)) == domain


@given(_local, _domain, st.booleans())
def test_property_emails_normalise_idempotently_and_keep_their_domain(local, domain, shout):
    raw = f"  {local}@{domain.upper() if shout else domain} "
    email = normalize_email(raw)
    assert email == f"{local}@{domain}"
    assert normalize_email(email) == email
    assert domains.email_domain(email) == normalize_domain(domain)


@given(st.text(max_size=80))
def test_property_any_text_is_either_refused_or_normalised_to_a_fixed_point(text):
    for parse, error in ((normalize_domain, InvalidDomain), (normalize_email, InvalidEmail)):
        try:
            value = parse(text)
        except error:
            continue
        assert value == value.strip().lower() and value.isascii() and parse(value) == value
