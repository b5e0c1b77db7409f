"""The seat ledger: activate / check / release, the user list, and users of removed domains."""

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from billing_app.models import ActivatedUser, AuditLog
from billing_app.plans import Plan
from billing_app.services import domains, seats
from billing_app.services.accounts import account_for_api_key, issue_api_key, licenses_used
from billing_app.services.emails import InvalidEmail
from billing_app.services.seats import Outcome
from billing_app.services.summary import UserListRow, build_summary, user_list_rows

ADMIN = "admin@acme.test"


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session


@pytest.fixture
def acme(session, add_unlimited_account):
    return add_unlimited_account(session, "acme", licenses=3, users=("alice@acme.test",))


def _check(session, account, email):
    """The connector's check, as the license API makes it (on the session's connection: its changes
    count)."""
    key = issue_api_key(session, account, actor="test")
    session.flush()
    answer = seats.check(session.connection(), key, email)
    return None if answer is None else (answer.plan, answer.licensed)


def _audit(session, action):
    return [
        (entry.outcome, json.loads(entry.detail))
        for entry in session.exec(select(AuditLog).where(AuditLog.action == action))
    ]


def test_activate_is_idempotent_and_audits_changes(session, acme):
    first = seats.activate(session, acme.id, " Bob@ACME.test ", actor="connector")
    assert (first.outcome, first.email, first.licensed, first.licenses_used) == (
        Outcome.ACTIVATED,
        "bob@acme.test",
        True,
        2,
    )
    again = seats.activate(session, acme.id, "bob@acme.test", actor="connector")
    assert (again.outcome, again.licensed, again.licenses_used) == (Outcome.ALREADY_ACTIVE, True, 2)
    assert again.message == "bob@acme.test already uses a license."
    assert _audit(session, "license.activate") == [
        ("ok", {"email": "bob@acme.test", "result": "activated"})
    ]


def test_other_domains_are_refused_until_allowed(session, acme):
    refused = seats.activate(session, acme.id, "eve@beta.io", actor="connector")
    assert (refused.outcome, refused.licensed) == (Outcome.DOMAIN_NOT_ALLOWED, False)
    assert (
        refused.message == "beta.io is not an email domain allowed to use licenses of this account."
    )
    assert licenses_used(session, acme.id) == 1
    assert _audit(session, "license.activate")[-1] == (
        "error",
        {"email": "eve@beta.io", "result": "domain_not_allowed"},
    )
    domains.replace_domains(session, acme, ["beta.io"], actor=ADMIN)
    assert (
        seats.activate(session, acme.id, "eve@beta.io", actor="connector").outcome
        == Outcome.ACTIVATED
    )


def test_no_activation_beyond_the_licenses_purchased(session, acme):
    for name in ("bob", "carol"):
        assert (
            seats.activate(session, acme.id, f"{name}@acme.test", actor="connector").outcome
            == Outcome.ACTIVATED
        )
    full = seats.activate(session, acme.id, "dave@acme.test", actor="connector")
    assert (full.outcome, full.licenses_used, full.licenses_purchased) == (
        Outcome.NO_FREE_LICENSE,
        3,
        3,
    )
    assert (
        full.message
        == "No free license: all 3 are in use. Remove a user or purchase more licenses."
    )
    # Users already holding a license keep it.
    assert seats.activate(session, acme.id, "alice@acme.test", actor="connector").licensed


def test_fewer_licenses_than_users_refuses_new_users_and_keeps_everyone(session, acme):
    for name in ("bob", "carol"):
        seats.activate(session, acme.id, f"{name}@acme.test", actor="connector")
    acme.licenses_purchased = 1  # e.g. a webhook reported a lower quantity
    session.add(acme)
    refused = seats.activate(session, acme.id, "dave@acme.test", actor="connector")
    assert refused.outcome == Outcome.USERS_EXCEED_LICENSES
    assert refused.message == (
        "3 users are active but only 1 license is purchased: remove 2 users or purchase more "
        "licenses before adding new ones."
    )
    assert _audit(session, "license.activate")[-1] == (
        "error",
        {"email": "dave@acme.test", "result": "users_exceed_licenses"},
    )
    assert licenses_used(session, acme.id) == 3
    # Users already holding a license keep it: their checks and activations still answer licensed.
    assert _check(session, acme, "carol@acme.test") == ("unlimited", True)
    assert seats.activate(session, acme.id, "carol@acme.test", actor="connector").licensed


def test_the_page_says_when_users_exceed_licenses(session, acme):
    assert build_summary(session, acme).over_licensed_notice == ""
    seats.activate(session, acme.id, "bob@acme.test", actor="connector")
    acme.licenses_purchased = 1
    assert build_summary(session, acme).over_licensed_notice == (
        "2 users are active but only 1 license is purchased: remove users in User Management "
        "or purchase more."
    )
    acme.plan = Plan.FREE  # the free version has no licenses to exceed
    assert build_summary(session, acme).over_licensed_notice == ""


def test_free_version_needs_the_unlimited_plan(session, acme):
    acme.plan = Plan.FREE
    session.add(acme)
    refused = seats.activate(session, acme.id, "bob@acme.test", actor="connector")
    assert refused.outcome == Outcome.PLAN_REQUIRED and not refused.licensed
    assert _check(session, acme, "alice@acme.test") == ("free", False)


def test_release_frees_the_license_at_once(session, acme):
    assert _check(session, acme, " ALICE@acme.test") == ("unlimited", True)
    assert seats.release(session, acme.id, "alice@acme.test", actor=ADMIN) is True
    assert _check(session, acme, "alice@acme.test") == ("unlimited", False)
    assert seats.release(session, acme.id, "alice@acme.test", actor=ADMIN) is False
    assert _audit(session, "license.release") == [("ok", {"email": "alice@acme.test"})]


@pytest.mark.parametrize("operation", [seats.activate, seats.release])
def test_invalid_email_changes_nothing(session, acme, operation):
    with pytest.raises(InvalidEmail):
        operation(session, acme.id, "alice@acme.test, bob@acme.test", actor="connector")
    assert licenses_used(session, acme.id) == 1
    assert _audit(session, "license.activate") == _audit(session, "license.release") == []


def test_user_list_pages_and_searches(session, add_unlimited_account):
    emails = tuple(f"user{i:03d}@acme.test" for i in range(60)) + ("odd_one%@acme.test",)
    account = add_unlimited_account(session, "acme", licenses=100, users=emails)
    first = seats.list_users(session, account.id)
    assert (first.total, first.page, first.page_count, len(first.users)) == (61, 0, 3, 25)
    assert (
        first.users[0].email == "odd_one%@acme.test" and first.users[1].email == "user000@acme.test"
    )
    last = seats.list_users(session, account.id, page=99)
    assert (last.page, [u.email for u in last.users]) == (2, list(emails[49:60]))
    found = seats.list_users(session, account.id, search=" USER05")
    assert [u.email for u in found.users] == [f"user05{i}@acme.test" for i in range(10)]
    # LIKE wildcards in the search are plain characters.
    assert [u.email for u in seats.list_users(session, account.id, search="_one%").users] == [
        "odd_one%@acme.test"
    ]
    assert seats.list_users(session, account.id, search="%").total == 1
    empty = seats.list_users(session, account.id, search="nobody")
    assert (empty.total, empty.page, empty.page_count, empty.users) == (0, 0, 1, [])


def test_the_user_list_shows_each_users_email_and_activation_day(session, add_unlimited_account):
    account = add_unlimited_account(session, "acme", licenses=5, users=("ann@acme.test",))
    stored = session.exec(select(ActivatedUser)).one()
    stored.activated_at = datetime(2026, 3, 4, 23, 59, tzinfo=UTC)
    session.commit()
    assert user_list_rows(seats.list_users(session, account.id).users) == [
        UserListRow(email="ann@acme.test", activated="Mar 4, 2026")
    ]


def test_users_of_a_removed_domain_stay_until_released(session, add_unlimited_account):
    account = add_unlimited_account(
        session,
        "acme",
        licenses=10,
        users=("a@beta.io", "b@beta.io", "c@gamma.org", "d@sub.beta.io", "e@acme.test"),
    )
    domains.replace_domains(session, account, ["beta.io", "gamma.org"], actor=ADMIN)
    change = domains.replace_domains(session, account, [], actor=ADMIN)
    assert change.removed == ["beta.io", "gamma.org"]
    assert seats.users_of_domains(session, account.id, change.removed) == {
        "beta.io": 2,
        "gamma.org": 1,
    }
    assert licenses_used(session, account.id) == 5
    # A domain allowed again in the meantime is not emptied.
    domains.replace_domains(session, account, ["gamma.org"], actor=ADMIN)
    assert seats.release_users_of_domains(session, account, change.removed, actor=ADMIN) == 2
    remaining = session.exec(select(ActivatedUser.email).order_by(ActivatedUser.email)).all()
    assert remaining == ["c@gamma.org", "d@sub.beta.io", "e@acme.test"]
    assert seats.release_users_of_domains(session, account, ["acme.test"], actor=ADMIN) == 0


def test_an_api_key_finds_its_account_only(session, acme):
    key = issue_api_key(session, acme, actor="test")
    session.commit()
    assert account_for_api_key(session, key) == acme
    assert account_for_api_key(session, key + "x") is None
    assert seats.activate(
        session, acme.id, "alice@acme.test", actor="connector"
    ) == seats.Activation(Outcome.ALREADY_ACTIVE, "alice@acme.test", 1, 3, "unlimited")
    acme.plan = Plan.FREE
    session.add(acme)
    session.commit()
    refused = seats.activate(session, acme.id, "carol@acme.test", actor="connector")
    assert (refused.outcome, refused.plan) == (Outcome.PLAN_REQUIRED, Plan.FREE)


def test_the_check_tells_an_unknown_key_before_a_bad_email(session, acme):
    key = issue_api_key(session, acme, actor="test")
    session.flush()
    assert seats.check(session.connection(), key + "x", "not an email") is None
    with pytest.raises(InvalidEmail):
        seats.check(session.connection(), key, "not an email")
