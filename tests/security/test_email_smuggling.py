"""Attack: smuggle a second seat past the email check (`alice\\n@acme.test`, control characters, odd
Unicode).

A trailing newline in the local part used to pass the `^…$` pattern, so one user could hold
several seats under look-alike addresses. Every email must be one plain address; the
license API answers anything else with a 400 and takes no seat.
"""

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlmodel import select
from starlette.testclient import TestClient

from billing_app.api import licenses
from billing_app.api.routes import build_api
from billing_app.db import session_scope
from billing_app.models import ActivatedUser
from billing_app.services.emails import InvalidEmail, normalize_email

# What a normalised address may look like: a dot-atom local part, an ASCII (IDNA) domain.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
# Characters that tell apart addresses a person reads as the same one.
_TRICKY = "\n\r\t\x00\x0b\x0c\x1f\x7f\x85\xa0\u200b\u2028\ufeff "


@pytest.mark.parametrize(
    "raw",
    [
        "alice\n@acme.test",
        "alice\r\n@acme.test",
        "alice\x00@acme.test",
        "alice\t@acme.test",
        "alice\n@acme.test\n",
        "ali\u200bce@acme.test",
        "alice @acme.test",
        "alice@acme.test\nbob@acme.test",
        "alice@acme.test\x00",
        "alice\u2028@acme.test",
    ],
)
def test_control_characters_and_newlines_are_refused(raw):
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


def test_outer_whitespace_is_the_same_one_address():
    assert normalize_email(" Alice@ACME.test\n") == "alice@acme.test"


_email_like = st.one_of(
    st.text(),
    st.builds(
        lambda local, domain: f"{local}@{domain}", st.text(max_size=20), st.text(max_size=20)
    ),
    st.builds(
        lambda local, tail: f"{local}{tail}@acme.test",
        st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        st.text(alphabet=st.sampled_from(_TRICKY), max_size=3),
    ),
)


@given(_email_like)
@example("alice\n@acme.test")
def test_whatever_is_accepted_is_one_plain_address_and_stable(raw):
    try:
        email = normalize_email(raw)
    except InvalidEmail:
        return
    assert _PLAIN_EMAIL.fullmatch(email), email
    assert normalize_email(email) == email


@pytest.fixture
def api():
    with TestClient(
        build_api(licenses.routes), base_url="http://testserver/api/v1/licenses"
    ) as client:
        yield client


def _seats(account_id: int) -> list[str]:
    with session_scope() as session:
        return list(
            session.exec(select(ActivatedUser.email).where(ActivatedUser.account_id == account_id))
        )


def test_the_license_api_refuses_smuggled_addresses(api, seat_account):
    account_id, domain, key = seat_account(licenses=10, users=0)
    headers = {"Authorization": f"Bearer {key}"}
    assert (
        api.post("/activate", json={"email": f"alice@{domain}"}, headers=headers).status_code == 200
    )
    for raw in (
        f"alice\n@{domain}",
        f"alice\r\n@{domain}",
        f"alice\x00@{domain}",
        f"alice\u200b@{domain}",
    ):
        response = api.post("/activate", json={"email": raw}, headers=headers)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_email"), raw
        assert api.get("/check", params={"email": raw}, headers=headers).status_code == 400
    assert _seats(account_id) == [f"alice@{domain}"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=_email_like)
def test_the_license_api_takes_a_seat_only_for_one_plain_address(api, seat_account, raw):
    account_id, domain, key = seat_account(licenses=3, users=0)
    raw = raw.replace("acme.test", domain)
    response = api.post(
        "/activate", json={"email": raw}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code in (200, 400, 403), response.text
    seats = _seats(account_id)
    if response.status_code == 200:
        assert seats == [response.json()["email"]] and _PLAIN_EMAIL.fullmatch(seats[0])
    else:
        assert seats == []
