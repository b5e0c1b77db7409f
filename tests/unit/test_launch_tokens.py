import base64
import hashlib
import hmac
import json

import pytest

from billing_app.services.launch_tokens import (
    InvalidLaunchToken,
    launch_token_id,
    sign_launch_token,
    verify_launch_token,
)

SECRET = b"s" * 32


def test_round_trip_names_account_and_email():
    token = sign_launch_token(
        SECRET, account="demo", email="admin@acme.test", ttl_seconds=600, now=1000
    )
    claims = verify_launch_token(SECRET, token, now=1500)
    assert (claims.account, claims.email, claims.expires_at) == ("demo", "admin@acme.test", 1600)
    assert len(claims.token_id) >= 16


def test_each_token_has_its_own_id():
    one = verify_launch_token(
        SECRET, sign_launch_token(SECRET, account="demo", email="a@b.co", ttl_seconds=60)
    )
    two = verify_launch_token(
        SECRET, sign_launch_token(SECRET, account="demo", email="a@b.co", ttl_seconds=60)
    )
    assert one.token_id != two.token_id


def test_expired_token_is_refused():
    token = sign_launch_token(SECRET, account="demo", email="a@b.co", ttl_seconds=600, now=1000)
    verify_launch_token(SECRET, token, now=1599)
    with pytest.raises(InvalidLaunchToken, match="expired"):
        verify_launch_token(SECRET, token, now=1600)


def test_token_signed_with_another_secret_is_refused():
    token = sign_launch_token(b"other-secret", account="demo", email="a@b.co", ttl_seconds=600)
    with pytest.raises(InvalidLaunchToken, match="signature"):
        verify_launch_token(SECRET, token)


def test_tampered_payload_is_refused():
    token = sign_launch_token(SECRET, account="free-demo", email="a@b.co", ttl_seconds=600)
    payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["a"] = "demo"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidLaunchToken):
        verify_launch_token(SECRET, f"{forged}.{signature}")


@pytest.mark.parametrize(
    "token", [None, "", "abc", "a.b.c", "x" * 5000, "....", "%%%.%%%", "eyJ9.sig"]
)
def test_garbage_is_refused(token):
    with pytest.raises(InvalidLaunchToken):
        verify_launch_token(SECRET, token)


def test_validly_signed_but_malformed_payload_is_refused():
    from billing_app.services.launch_tokens import _b64encode, _signature

    payload = _b64encode(b'{"a": "demo"}')
    with pytest.raises(InvalidLaunchToken, match="malformed"):
        verify_launch_token(SECRET, f"{payload}.{_signature(SECRET, payload)}")


def test_the_language_is_a_signed_claim():
    token = sign_launch_token(SECRET, account="demo", email="a@b.co", ttl_seconds=60, locale="de")
    assert verify_launch_token(SECRET, token).locale == "de"
    untold = sign_launch_token(SECRET, account="demo", email="a@b.co", ttl_seconds=60)
    assert verify_launch_token(SECRET, untold).locale is None


def test_a_changed_language_breaks_the_signature():
    token = sign_launch_token(SECRET, account="demo", email="a@b.co", ttl_seconds=60, locale="de")
    payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["l"] = "en"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidLaunchToken, match="bad signature"):
        verify_launch_token(SECRET, f"{forged}.{signature}")


def test_only_languages_of_the_page_are_signed_or_accepted():
    with pytest.raises(ValueError, match="locale"):
        sign_launch_token(SECRET, account="demo", email="a@b.co", ttl_seconds=60, locale="fr")
    # Even correctly signed (e.g. by a newer connector), an unknown language is refused.
    body = {"a": "demo", "e": "a@b.co", "x": 2**40, "n": "n" * 16, "l": "fr"}
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    signature = (
        base64.urlsafe_b64encode(hmac.new(SECRET, payload.encode(), hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(InvalidLaunchToken, match="malformed payload"):
        verify_launch_token(SECRET, f"{payload}.{signature}")


def test_the_id_of_a_genuine_token_is_read_even_once_expired():
    token = sign_launch_token(SECRET, account="demo", email="a@b.co", ttl_seconds=1, now=1000)
    assert launch_token_id(SECRET, token) == verify_launch_token(SECRET, token, now=1000).token_id
    assert launch_token_id(b"other-secret" * 3, token) is None
    assert launch_token_id(SECRET, token[:-4] + "AAAA") is None
    assert launch_token_id(SECRET, "x" * 5000) is None
