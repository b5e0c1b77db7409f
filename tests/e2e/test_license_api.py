"""The connector's license API, through the running production app."""

from __future__ import annotations

import httpx
import pytest

from billing_app.db import session_scope
from billing_app.services import seats
from billing_app.services.accounts import get_account, issue_api_key
from tests.e2e.helpers import settled

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(base_url: str):
    with httpx.Client(base_url=base_url + "/api/v1/licenses", timeout=10) as client:
        yield client


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _check(api: httpx.Client, key: str, email: str) -> dict:
    return api.get("/check", params={"email": email}, headers=_auth(key)).json()


def test_activate_check_release(api, seat_account):
    _slug, domain, key = seat_account(licenses=5, users=1)
    email = f"new@{domain}"
    assert api.get("/check", params={"email": email}, headers=_auth(key)).json() == {
        "licensed": False,
        "plan": "unlimited",
    }

    activated = api.post(
        "/activate", json={"email": f"  New@{domain.upper()} "}, headers=_auth(key)
    )
    assert activated.status_code == 200
    body = activated.json()
    assert (body["licensed"], body["email"], body["already_active"], body["licenses_used"]) == (
        True,
        email,
        False,
        2,
    )
    again = api.post("/activate", json={"email": email}, headers=_auth(key))
    assert (again.status_code, again.json()["already_active"], again.json()["licenses_used"]) == (
        200,
        True,
        2,
    )
    # Activated on one worker, checked on any (see settled()).
    licensed = {"licensed": True, "plan": "unlimited"}
    assert settled(lambda: _check(api, key, email), licensed) == licensed

    released = api.post("/release", json={"email": email}, headers=_auth(key))
    assert (released.status_code, released.json()) == (200, {"released": True, "licensed": False})
    # The connector is refused at its next check, and releasing again is harmless.
    refused = {"licensed": False, "plan": "unlimited"}
    assert settled(lambda: _check(api, key, email), refused) == refused
    assert api.post("/release", json={"email": email}, headers=_auth(key)).json() == {
        "released": False,
        "licensed": False,
    }


def test_changes_made_by_another_process_reach_the_check_within_its_lag(api, seat_account):
    slug, domain, key = seat_account(users=1)
    email = f"user1@{domain}"
    licensed = {"licensed": True, "plan": "unlimited"}
    for _ in range(3):  # answered, then from the answering worker's cache
        assert _check(api, key, email) == licensed
    # A new key issued by this process, as `billing-admin api-key` does: the old one is refused.
    with session_scope() as session:
        account = get_account(session, slug)
        new_key = issue_api_key(session, account, actor="test")

    def old_key_status() -> int:
        return api.get("/check", params={"email": email}, headers=_auth(key)).status_code

    assert settled(old_key_status, 401) == 401
    assert _check(api, new_key, email) == licensed
    with session_scope() as session:
        seats.release(session, account.id, email, actor="test")
    refused = {"licensed": False, "plan": "unlimited"}
    assert settled(lambda: _check(api, new_key, email), refused) == refused


def test_domain_not_allowed_is_403(api, seat_account):
    _slug, _domain, key = seat_account()
    response = api.post("/activate", json={"email": "eve@elsewhere.test"}, headers=_auth(key))
    assert response.status_code == 403
    assert response.json()["error"] == "domain_not_allowed"
    assert "elsewhere.test is not an email domain allowed" in response.json()["message"]


def test_no_free_license_is_409(api, seat_account):
    _slug, domain, key = seat_account(licenses=2, users=2)
    response = api.post("/activate", json={"email": f"third@{domain}"}, headers=_auth(key))
    assert response.status_code == 409
    assert response.json() | {"message": ""} == {
        "licensed": False,
        "email": f"third@{domain}",
        "plan": "unlimited",
        "licenses_used": 2,
        "licenses_purchased": 2,
        "error": "no_free_license",
        "message": "",
    }
    # Users holding a license keep it.
    assert (
        api.post("/activate", json={"email": f"user1@{domain}"}, headers=_auth(key)).status_code
        == 200
    )


def test_more_users_than_licenses_is_409_and_active_users_keep_working(api, seat_account):
    _slug, domain, key = seat_account(licenses=1, users=3)  # e.g. Stripe's quantity lowered
    response = api.post("/activate", json={"email": f"fourth@{domain}"}, headers=_auth(key))
    assert response.status_code == 409
    assert response.json()["error"] == "users_exceed_licenses"
    assert response.json()["message"] == (
        "3 users are active but only 1 license is purchased: remove 2 users or purchase more "
        "licenses before adding new ones."
    )
    again = api.post("/activate", json={"email": f"user1@{domain}"}, headers=_auth(key))
    assert (again.status_code, again.json()["already_active"]) == (200, True)
    assert api.get("/check", params={"email": f"user2@{domain}"}, headers=_auth(key)).json() == {
        "licensed": True,
        "plan": "unlimited",
    }


def test_free_version_is_402(api, app_settings):
    with session_scope() as session:
        key = issue_api_key(session, get_account(session, "free-demo"), actor="test")
    response = api.post("/activate", json={"email": "hank@globex.test"}, headers=_auth(key))
    assert (response.status_code, response.json()["error"]) == (402, "plan_required")
    assert api.get("/check", params={"email": "hank@globex.test"}, headers=_auth(key)).json() == {
        "licensed": False,
        "plan": "free",
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer cbk_not-a-key"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
)
def test_missing_or_wrong_key_is_401(api, seat_account, headers):
    _slug, domain, _key = seat_account()
    for response in (
        api.post("/activate", json={"email": f"new@{domain}"}, headers=headers),
        api.get("/check", params={"email": f"user1@{domain}"}, headers=headers),
        api.post("/release", json={"email": f"user1@{domain}"}, headers=headers),
        # A wrong key is told so even when the body is malformed too.
        api.post("/activate", content=b"{", headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_another_accounts_key_reaches_only_that_account(api, seat_account):
    _slug, domain, _key = seat_account(users=1)
    _other_slug, _other_domain, other_key = seat_account()
    assert (
        api.get("/check", params={"email": f"user1@{domain}"}, headers=_auth(other_key)).json()[
            "licensed"
        ]
        is False
    )
    assert (
        api.post("/activate", json={"email": f"new@{domain}"}, headers=_auth(other_key)).status_code
        == 403
    )
    assert (
        api.post("/release", json={"email": f"user1@{domain}"}, headers=_auth(other_key)).json()[
            "released"
        ]
        is False
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b'"bob@x.test"',
        b"null",
        b"{}",
        b'{"mail": "a@b.test"}',
        b'{"email": 42}',
        b'{"email": ["a@b.test"]}',
        b'{"email": null}',
        b"\xff\xfe{",
        b'{"email": "a@b.test"} trailing',
    ],
)
def test_malformed_bodies_are_400(api, seat_account, content):
    _slug, _domain, key = seat_account()
    for path in ("/activate", "/release"):
        response = api.post(
            path, content=content, headers={**_auth(key), "Content-Type": "application/json"}
        )
        assert (response.status_code, response.json()["error"]) == (400, "bad_request")


@pytest.mark.parametrize(
    "email",
    [
        "",
        "bob",
        "bob@",
        "@x.test",
        "a@b",
        "a@x.test, b@x.test",
        "Bob <bob@x.test>",
        "a b@x.test",
        "x" * 300,
    ],
)
def test_anything_but_one_address_is_400(api, seat_account, email):
    _slug, _domain, key = seat_account()
    for response in (
        api.post("/activate", json={"email": email}, headers=_auth(key)),
        api.get("/check", params={"email": email}, headers=_auth(key)),
        api.post("/release", json={"email": email}, headers=_auth(key)),
    ):
        assert (response.status_code, response.json()["error"]) == (400, "invalid_email")
        assert response.json()["message"] == "Enter one email address, such as name@example.com."


@pytest.mark.parametrize("query", ["", "?mail=a@b.test", "?email=a@b.test&email=c@d.test"])
def test_check_needs_exactly_one_email(api, seat_account, query):
    _slug, _domain, key = seat_account()
    response = api.get("/check" + query, headers=_auth(key))
    assert (response.status_code, response.json()["error"]) == (400, "bad_request")


def test_huge_bodies_are_413_declared_or_streamed(api, seat_account):
    _slug, domain, key = seat_account()
    huge = b'{"email": "new@' + domain.encode() + b'", "pad": "' + b"x" * 5000 + b'"}'
    response = api.post("/activate", content=huge, headers=_auth(key))
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    # Chunked, without a Content-Length.
    response = api.post("/activate", content=iter([huge[:3000], huge[3000:]]), headers=_auth(key))
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    assert (
        api.get("/check", params={"email": f"new@{domain}"}, headers=_auth(key)).json()["licensed"]
        is False
    )


def test_responses_are_json_with_the_security_headers(api, seat_account):
    _slug, domain, key = seat_account()
    response = api.get("/check", params={"email": f"user1@{domain}"}, headers=_auth(key))
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    wrong_method = api.get("/activate", headers=_auth(key))
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
    assert wrong_method.json()["error"] == "method_not_allowed"
