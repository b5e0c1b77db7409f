"""Signed, expiring, single-use launch tokens: what the connector's `$` icon opens.

A token is `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))`; the
payload names the account, the admin email, an expiry and a random token id so a
link can be redeemed once, and optionally the page's language ("l": the connector knows its
user's). Only the HMAC is trusted: nothing in a payload is looked at before its signature has
been checked in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

from billing_app.i18n import SUPPORTED_LOCALES

MAX_TOKEN_LENGTH = 2048
# Two unpadded base64url parts: anything else (non-ASCII above all, which hmac and the ASCII
# codec reject with TypeError / UnicodeEncodeError) is malformed before any decoding.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class InvalidLaunchToken(Exception):
    """The token is missing, malformed, forged, tampered with or expired."""


@dataclass(frozen=True)
class LaunchClaims:
    account: str
    email: str
    expires_at: int
    token_id: str
    # "en" or "de" when the connector chose the page's language; None: the browser's.
    locale: str | None = None


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: str) -> str:
    return _b64encode(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def sign_launch_token(
    secret: bytes,
    *,
    account: str,
    email: str,
    ttl_seconds: int,
    now: float | None = None,
    locale: str | None = None,
) -> str:
    if not secret:
        raise ValueError("launch secret is empty")
    if locale is not None and locale not in SUPPORTED_LOCALES:
        raise ValueError(f"locale must be one of {', '.join(SUPPORTED_LOCALES)}")
    issued = int(time.time() if now is None else now)
    body = {"a": account, "e": email, "x": issued + ttl_seconds, "n": secrets.token_urlsafe(12)}
    if locale is not None:
        body["l"] = locale
    payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_signature(secret, payload)}"


def verify_launch_token(
    secret: bytes, token: str | None, *, now: float | None = None
) -> LaunchClaims:
    claims = _genuine_claims(secret, token)
    if claims.expires_at <= (time.time() if now is None else now):
        raise InvalidLaunchToken("expired")
    return claims


def launch_token_id(secret: bytes, token: str | None) -> str | None:
    """Which link an event of a tab carries: the id of a token signed with `secret`, expired or not
    (the tab's own link stays in its address bar if the script dropping it never arrived); None
    for anything else."""
    try:
        return _genuine_claims(secret, token).token_id
    except InvalidLaunchToken:
        return None


def _genuine_claims(secret: bytes, token: str | None) -> LaunchClaims:
    """The claims of a token signed with `secret`, its expiry not checked."""
    if (
        not isinstance(token, str)
        or len(token) > MAX_TOKEN_LENGTH
        or not _TOKEN_SHAPE.fullmatch(token)
    ):
        raise InvalidLaunchToken("malformed")
    payload, signature = token.split(".")
    if not hmac.compare_digest(_signature(secret, payload), signature):
        raise InvalidLaunchToken("bad signature")
    try:
        body = json.loads(_b64decode(payload))
        account, email, expires_at, token_id = body["a"], body["e"], body["x"], body["n"]
        locale = body.get("l")
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidLaunchToken("malformed payload") from exc
    if not (
        isinstance(account, str)
        and isinstance(email, str)
        and isinstance(token_id, str)
        and type(expires_at) is int
        and (locale is None or locale in SUPPORTED_LOCALES)
    ):
        raise InvalidLaunchToken("malformed payload")
    return LaunchClaims(
        account=account, email=email, expires_at=expires_at, token_id=token_id, locale=locale
    )
